/**
 * Business dates are Paris dates: an invoice is overdue, a day or a month starts, in
 * Europe/Paris — whatever the server's time zone. Dates are ISO strings `YYYY-MM-DD`.
 *
 * The time-zone formatters are made on first use: one loads ICU's zone and locale data (about 7 MB
 * of memory), which a process that never needs a Paris date (most `havre` commands) should not pay.
 */
let paris: Intl.DateTimeFormat | undefined;

/** The calendar date in Paris at `instant`, as `YYYY-MM-DD`. */
export function parisDate(instant: Date): string {
  paris ??= new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit' });
  return paris.format(instant);
}

let offsetFormat: Intl.DateTimeFormat | undefined;

/** Paris's UTC offset at `instant`, in minutes (60 in winter, 120 in summer). */
export function parisOffsetMinutes(instant: Date): number {
  offsetFormat ??= new Intl.DateTimeFormat('en-US', { timeZone: 'Europe/Paris', timeZoneName: 'longOffset' });
  const name = offsetFormat.formatToParts(instant).find((p) => p.type === 'timeZoneName')?.value ?? 'GMT';
  const m = /GMT([+-])(\d{2}):(\d{2})/.exec(name);
  return m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
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
