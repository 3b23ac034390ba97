/**
 * Business dates are Paris dates: an invoice is overdue, a day or a month starts, in
 * Europe/Paris — whatever the server's time zone. Dates are ISO strings `YYYY-MM-DD`.
 */
const PARIS = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' });

/** The calendar date in Paris at `instant`, as `YYYY-MM-DD`. */
export function parisDate(instant: Date): string {
  return PARIS.format(instant);
}

/** Whole days from date `a` to date `b` (both `YYYY-MM-DD`; negative when b is before a). */
export function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** `date` plus `days` calendar days (`YYYY-MM-DD`). */
export function addDays(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}
