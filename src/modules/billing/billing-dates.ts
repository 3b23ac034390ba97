/**
 * The calendar rules of the contract, in Europe/Paris (business dates, `YYYY-MM-DD`):
 * - BIL-3: the invoice for a month is issued on its 1st, in advance;
 * - BIL-4: a subscription starting mid-month is first invoiced prorata temporis;
 * - BIL-5: a termination notice takes effect at the end of the month following its receipt;
 * - BIL-7: a price change is announced ≥ 60 days ahead; the customer may terminate without penalty
 *   within 30 days of the notice, effective before the new price applies.
 * Every function takes its instants as parameters: nothing here reads the clock.
 */
import { addDays, daysBetween, parisDate } from '../../lib/paris-date.ts';

/** Days in a month (1–12) of a year, Gregorian. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function parts(date: string): [number, number, number] {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(date);
  if (!m) throw new Error(`not a date: ${date}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** `a × b ÷ c` rounded half-up, for non-negative integers (exact: no floating point). */
export function mulDivHalfUp(a: number, b: number, c: number): number {
  if (![a, b, c].every(Number.isSafeInteger) || a < 0 || b < 0 || c <= 0) throw new Error('mulDivHalfUp takes non-negative safe integers and a positive divisor');
  const num = BigInt(a) * BigInt(b);
  const den = BigInt(c);
  return Number((num * 2n + den) / (den * 2n));
}

/**
 * BIL-4: the first invoice of a subscription starting on `startDate`: price × (days from the start
 * day, inclusive, to the month's end) ÷ days in the month, rounded half-up to the cent. A start on
 * the 1st is the full price.
 */
export function prorataCents(monthlyPriceCents: number, startDate: string): number {
  const [y, m, d] = parts(startDate);
  const days = daysInMonth(y, m);
  return mulDivHalfUp(monthlyPriceCents, days - d + 1, days);
}

/** BIL-3: the issue date of the invoice of month `YYYY-MM` (its 1st). */
export function issueDateOf(month: string): string {
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw new Error(`not a month: ${month}`);
  return `${month}-01`;
}

/** The month (`YYYY-MM`) of a Paris date, and the one after it. */
export function monthOf(date: string): string {
  return date.slice(0, 7);
}

export function nextMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
}

/** The last day (`YYYY-MM-DD`) of month `YYYY-MM`. */
export function lastDayOf(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return `${month}-${String(daysInMonth(y, m)).padStart(2, '0')}`;
}

/**
 * BIL-5: a notice received at instant `receivedAt` (its Paris date counts) takes effect at the end
 * of the month following the month of receipt: the contract's last day is returned. No partial refund.
 */
export function terminationLastDay(receivedAt: Date): string {
  return lastDayOf(nextMonth(monthOf(parisDate(receivedAt))));
}

export const PRICE_NOTICE_DAYS = 60;
export const PRICE_OBJECTION_DAYS = 30;

/**
 * BIL-7: checks a price change announced at `noticeAt` to apply from `effectiveDate`; returns the
 * last day on which the customer may terminate without penalty, and the last day of a contract so
 * terminated (the day before the new price applies). Throws when the notice is under 60 days.
 */
export function priceChangeWindow(noticeAt: Date, effectiveDate: string): { objectionUntil: string; terminationLastDay: string } {
  const noticeDay = parisDate(noticeAt);
  const lead = daysBetween(noticeDay, effectiveDate);
  if (lead < PRICE_NOTICE_DAYS) throw new RangeError(`a price change must be announced at least ${PRICE_NOTICE_DAYS} days before it applies (here ${lead})`);
  return { objectionUntil: addDays(noticeDay, PRICE_OBJECTION_DAYS), terminationLastDay: addDays(effectiveDate, -1) };
}
