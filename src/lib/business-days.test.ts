/** Paris business days (SEC-5 deadlines): weekends and French public holidays are skipped. */
import { describe, expect, it } from 'vitest';
import { addBusinessDays, endOfParisDay, frenchPublicHolidays, isBusinessDay, startOfParisDay } from './business-days.ts';

describe('Paris business days', () => {
  it('knows the French public holidays, not observances nor regional days', () => {
    const h = frenchPublicHolidays(2026);
    for (const d of ['2026-01-01', '2026-04-06', '2026-05-01', '2026-05-08', '2026-05-14', '2026-05-25', '2026-07-14', '2026-08-15', '2026-11-01', '2026-11-11', '2026-12-25']) expect(h.has(d), d).toBe(true);
    // Whit Sunday and Mother's Day are observances; Good Friday and 26 December only in Alsace-Moselle.
    for (const d of ['2026-05-24', '2026-05-31', '2026-04-03', '2026-12-26']) expect(h.has(d), d).toBe(false);
  });

  it('a business day is Monday to Friday and not a holiday', () => {
    expect(isBusinessDay('2026-11-10')).toBe(true); // Tuesday
    expect(isBusinessDay('2026-11-11')).toBe(false); // Wednesday, Armistice Day
    expect(isBusinessDay('2026-11-14')).toBe(false); // Saturday
    expect(isBusinessDay('2026-11-15')).toBe(false); // Sunday
    expect(() => isBusinessDay('2026-13-01')).toThrow(/not a date/);
  });

  it('[SEC-5] adds business days across a weekend and a French public holiday', () => {
    // Thursday 5 Nov 2026 + 5: Fri 6, Mon 9, Tue 10, (Wed 11 Armistice), Thu 12, Fri 13.
    expect(addBusinessDays('2026-11-05', 5)).toBe('2026-11-13');
    // Monday 21 Dec 2026 + 5: Tue 22, Wed 23, Thu 24, (Fri 25 Christmas, weekend), Mon 28, Tue 29.
    expect(addBusinessDays('2026-12-21', 5)).toBe('2026-12-29');
    // From a Saturday, counting starts on Monday.
    expect(addBusinessDays('2026-11-14', 1)).toBe('2026-11-16');
    // Across a year end and New Year's Day.
    expect(addBusinessDays('2026-12-30', 2)).toBe('2027-01-04');
    expect(addBusinessDays('2026-11-11', 0)).toBe('2026-11-12');
    expect(addBusinessDays('2026-11-12', 0)).toBe('2026-11-12');
    expect(() => addBusinessDays('2026-11-12', -1)).toThrow();
  });

  it('Paris days start at Paris midnight, in winter and in summer time', () => {
    expect(startOfParisDay('2026-11-13').toISOString()).toBe('2026-11-12T23:00:00.000Z');
    expect(endOfParisDay('2026-11-13').toISOString()).toBe('2026-11-13T23:00:00.000Z');
    expect(startOfParisDay('2026-07-14').toISOString()).toBe('2026-07-13T22:00:00.000Z');
    // The day DST ends (25 Oct 2026) starts in summer time and lasts 25 hours.
    expect(startOfParisDay('2026-10-25').toISOString()).toBe('2026-10-24T22:00:00.000Z');
    expect(endOfParisDay('2026-10-25').toISOString()).toBe('2026-10-25T23:00:00.000Z');
  });
});
