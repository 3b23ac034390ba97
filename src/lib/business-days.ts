/**
 * Business days in Paris: Monday to Friday, except French public holidays (from `date-holidays`,
 * country FR, type `public` only: not Alsace-Moselle's extra days, not observances such as
 * Whit Sunday). Dates are Paris calendar dates `YYYY-MM-DD` (see paris-date.ts).
 *
 * Used for deadlines counted in business days, e.g. SEC-5: a security fix reaches every tenant
 * within 5 business days of its release.
 */
import { createRequire } from 'node:module';
import type Holidays from 'date-holidays';
import { addDays, parisOffsetMinutes } from './paris-date.ts';

const require = createRequire(import.meta.url);
let france: Holidays | undefined;
const holidaysByYear = new Map<number, ReadonlySet<string>>();

/**
 * The French holiday calendar, loaded on the first holiday asked for: date-holidays holds the rules
 * of every country (about 20 MB of memory), and most processes importing this file — every
 * `havre` command through the backup retention's Paris days — never count a business day.
 */
function frenchCalendar(): Holidays {
  if (!france) {
    const Calendar = require('date-holidays') as typeof Holidays;
    france = new Calendar('FR');
  }
  return france;
}

/** The French public holidays of `year`, as `YYYY-MM-DD` (computed once per year). */
export function frenchPublicHolidays(year: number): ReadonlySet<string> {
  let set = holidaysByYear.get(year);
  if (!set) {
    set = new Set(
      frenchCalendar()
        .getHolidays(year)
        .filter((h) => h.type === 'public')
        .map((h) => h.date.slice(0, 10)),
    );
    holidaysByYear.set(year, set);
  }
  return set;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

function checkDate(date: string): void {
  if (!DATE.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`))) throw new Error(`not a date (YYYY-MM-DD): ${date}`);
}

/** True when `date` (`YYYY-MM-DD`) is a working day in Paris: Monday–Friday and not a French public holiday. */
export function isBusinessDay(date: string): boolean {
  checkDate(date);
  const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
  if (weekday === 0 || weekday === 6) return false;
  return !frenchPublicHolidays(Number(date.slice(0, 4))).has(date);
}

/**
 * The business day `n` business days after `date` (n ≥ 0): counting starts the day after, so a
 * fix released on Thursday 5 November 2026 with n = 5 is due on Friday 13 November (weekend and
 * Armistice Day skipped). With n = 0: `date` itself if it is a business day, else the next one.
 */
export function addBusinessDays(date: string, n: number): string {
  checkDate(date);
  if (!Number.isInteger(n) || n < 0) throw new Error(`addBusinessDays takes a whole number of days ≥ 0, not ${n}`);
  let day = date;
  if (n === 0) {
    while (!isBusinessDay(day)) day = addDays(day, 1);
    return day;
  }
  let left = n;
  while (left > 0) {
    day = addDays(day, 1);
    if (isBusinessDay(day)) left--;
  }
  return day;
}

/** The instant a Paris calendar day starts (midnight in Paris, across DST changes). */
export function startOfParisDay(date: string): Date {
  checkDate(date);
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  // Midnight in Paris is never inside a DST jump (those happen at 02:00/03:00).
  const guess = new Date(utcMidnight - parisOffsetMinutes(new Date(utcMidnight)) * 60_000);
  const offset = parisOffsetMinutes(guess);
  return new Date(utcMidnight - offset * 60_000);
}

/** The first instant after the Paris calendar day `date`: a deadline "by the end of `date`" is before this. */
export function endOfParisDay(date: string): Date {
  return startOfParisDay(addDays(date, 1));
}
