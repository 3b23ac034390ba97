/**
 * BKP-2 retention: worked examples, then properties checked against a deliberately naive
 * reference written here with its own date arithmetic (Paris wall clock from
 * toLocaleString('sv-SE'), weekday and ISO week by hand, quadratic scans for "a newer one").
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { startOfParisDay } from '../../lib/business-days.ts';
import { lockUntil, planRetention, type KeepReason, type RetentionCandidate, type RetentionPlan } from './retention.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

// ---- The reference ------------------------------------------------------------------------------

interface Wall { y: number; m: number; d: number; date: string; week: string; str: string }

const pad = (n: number) => String(n).padStart(2, '0');
const isLeap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
const daysIn = (y: number, m: number) => [31, isLeap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]!;
/** Sakamoto: 0 = Sunday. */
function weekday(y: number, m: number, d: number): number {
  const t = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4][m - 1]!;
  const yy = m < 3 ? y - 1 : y;
  return (yy + Math.floor(yy / 4) - Math.floor(yy / 100) + Math.floor(yy / 400) + t + d) % 7;
}
function weeksIn(y: number): number {
  const p = (x: number) => (x + Math.floor(x / 4) - Math.floor(x / 100) + Math.floor(x / 400)) % 7;
  return p(y) === 4 || p(y - 1) === 3 ? 53 : 52;
}
function isoWeek(y: number, m: number, d: number): string {
  let dayOfYear = d;
  for (let i = 1; i < m; i++) dayOfYear += daysIn(y, i);
  const isoDow = ((weekday(y, m, d) + 6) % 7) + 1; // Monday 1 … Sunday 7
  const week = Math.floor((dayOfYear - isoDow + 10) / 7);
  if (week < 1) return `${y - 1}-W${weeksIn(y - 1)}`;
  if (week > weeksIn(y)) return `${y + 1}-W1`;
  return `${y}-W${week}`;
}
/** What toLocaleString('sv-SE', { timeZone: 'Europe/Paris' }) prints, with one formatter (25× faster). */
const SV_PARIS = new Intl.DateTimeFormat('sv-SE', { timeZone: 'Europe/Paris', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
/** Paris wall clock of `t`, e.g. str = "2026-03-29 03:30:00.000". */
function wallOf(t: Date): Wall {
  const s = SV_PARIS.format(t);
  const [y, m, d] = [Number(s.slice(0, 4)), Number(s.slice(5, 7)), Number(s.slice(8, 10))];
  return { y, m, d, date: s.slice(0, 10), week: isoWeek(y, m, d), str: `${s}.${String(t.getUTCMilliseconds()).padStart(3, '0')}` };
}
/** The rule's cutoff: 3 calendar months earlier on the wall clock; a missing day clamps to the month's end. */
function minusThreeMonths(w: Wall): string {
  const [y, m] = w.m > 3 ? [w.y, w.m - 3] : [w.y - 1, w.m + 9];
  if (w.d <= daysIn(y, m)) return `${y}-${pad(m)}-${pad(w.d)}${w.str.slice(10)}`;
  return `${y}-${pad(m)}-${pad(daysIn(y, m))} 23:59:59.999`; // the last instant of that month
}

type Walled = RetentionCandidate & { wall: Wall };
const withWalls = (backups: readonly RetentionCandidate[]): Walled[] => backups.map((b) => ({ ...b, wall: wallOf(b.takenAt) }));

/** Why the reference keeps `b` at `now`: for each reason, scan every other backup for a newer complete one. */
function referenceReasons(b: Walled, all: readonly Walled[], now: Date): KeepReason[] {
  if (!b.complete) return [];
  const age = now.getTime() - b.takenAt.getTime();
  const newer = (o: Walled) => o.takenAt.getTime() > b.takenAt.getTime() || (o.takenAt.getTime() === b.takenAt.getTime() && o.id > b.id);
  const displaced = (same: (w: Wall) => boolean) => all.some((o) => o.complete && o.id !== b.id && newer(o) && same(o.wall));
  const reasons: KeepReason[] = [];
  if (age < 7 * DAY && !displaced((w) => w.date === b.wall.date)) reasons.push('daily');
  if (age < 28 * DAY && !displaced((w) => w.week === b.wall.week)) reasons.push('weekly');
  if (b.wall.str > minusThreeMonths(wallOf(now)) && !displaced((w) => w.y === b.wall.y && w.m === b.wall.m)) reasons.push('monthly');
  return reasons;
}

function referencePlan(backups: readonly RetentionCandidate[], now: Date, staleAfterMs = DAY) {
  const all = withWalls(backups);
  const keep: Record<string, string> = {};
  const prune: string[] = [];
  for (const b of all) {
    const reasons = referenceReasons(b, all, now);
    if (reasons.length > 0) keep[b.id] = reasons.join('+');
    else if (b.complete || now.getTime() - b.takenAt.getTime() > staleAfterMs) prune.push(b.id);
  }
  return { keep, prune: prune.sort() };
}

// ---- Helpers ------------------------------------------------------------------------------------

const summary = (plan: RetentionPlan) => Object.fromEntries([...plan.keep].map(([id, k]) => [id, k.reasons.join('+')]));
const backup = (id: string, iso: string, complete = true): RetentionCandidate => ({ id, takenAt: new Date(iso), complete });
/** One complete backup a day at 01:00 UTC (03:00 in Paris in summer), id = the date. */
function dailyBackups(from: string, to: string): RetentionCandidate[] {
  const out: RetentionCandidate[] = [];
  for (let t = Date.parse(`${from}T01:00:00Z`); t <= Date.parse(`${to}T01:00:00Z`); t += DAY) out.push(backup(new Date(t).toISOString().slice(0, 10), new Date(t).toISOString()));
  return out;
}
const month30 = dailyBackups('2026-04-15', '2026-05-14'); // Wed 15 April … Thu 14 May 2026
const without = (ids: string[]) => month30.filter((b) => !ids.includes(b.id));
const MAY14 = '2026-05-14T10:00:00Z'; // Thursday
const MONTH30_KEPT = {
  '2026-05-14': 'daily+weekly+monthly', '2026-05-13': 'daily', '2026-05-12': 'daily', '2026-05-11': 'daily',
  '2026-05-10': 'daily+weekly', '2026-05-09': 'daily', '2026-05-08': 'daily',
  '2026-05-03': 'weekly', '2026-04-26': 'weekly', '2026-04-19': 'weekly', '2026-04-30': 'monthly',
};

// ---- Examples -----------------------------------------------------------------------------------

interface Example { title: string; backups: RetentionCandidate[]; now: string; kept: Record<string, string>; leftAlone?: string[] }

const examples: Example[] = [
  {
    title: '30 days of one backup a day: 7 daily, the newest of each ISO week within 28 days, the newest of April',
    backups: month30, now: MAY14, kept: MONTH30_KEPT,
  },
  {
    title: 'a missed Sunday: Saturday keeps its ISO week',
    backups: without(['2026-05-10']), now: MAY14,
    kept: { ...MONTH30_KEPT, '2026-05-10': undefined, '2026-05-09': 'daily+weekly' } as unknown as Record<string, string>,
  },
  {
    title: 'a failed Sunday: Saturday keeps its ISO week, the failed one is pruned once stale',
    backups: [...without(['2026-05-10']), backup('2026-05-10', '2026-05-10T01:00:00Z', false)], now: MAY14,
    kept: { ...MONTH30_KEPT, '2026-05-10': undefined, '2026-05-09': 'daily+weekly' } as unknown as Record<string, string>,
  },
  {
    title: 'several backups a day: only the newest of the day is kept',
    backups: [backup('a', '2026-05-12T01:00:00Z'), backup('b', '2026-05-12T09:00:00Z'), backup('c', '2026-05-12T15:00:00Z'), backup('d', '2026-05-13T01:00:00Z')],
    now: MAY14, kept: { c: 'daily', d: 'daily+weekly+monthly' },
  },
  {
    title: 'a newer incomplete backup never displaces the complete one; a young one is left alone, a stale one pruned',
    backups: [backup('ok12', '2026-05-12T01:00:00Z'), backup('failed12', '2026-05-12T20:00:00Z', false), backup('ok13', '2026-05-13T01:00:00Z'), backup('running13', '2026-05-13T15:00:00Z', false)],
    now: MAY14, kept: { ok12: 'daily', ok13: 'daily+weekly+monthly' }, leftAlone: ['running13'],
  },
  {
    title: 'DST, last Sunday of March 2026: Paris days and ISO weeks, not UTC ones',
    backups: [
      backup('sat 23:30 CET', '2026-03-28T22:30:00Z'), backup('sun 00:30 CET', '2026-03-28T23:30:00Z'),
      backup('sun 23:30 CEST', '2026-03-29T21:30:00Z'), backup('mon 00:30 CEST', '2026-03-29T22:30:00Z'),
    ],
    now: '2026-03-30T10:00:00Z',
    kept: { 'sat 23:30 CET': 'daily', 'sun 23:30 CEST': 'daily+weekly', 'mon 00:30 CEST': 'daily+weekly+monthly' },
  },
  {
    title: 'DST, last Sunday of October 2026: Paris days and ISO weeks, not UTC ones',
    backups: [
      backup('sat 23:30 CEST', '2026-10-24T21:30:00Z'), backup('sun 00:30 CEST', '2026-10-24T22:30:00Z'),
      backup('sun 23:30 CET', '2026-10-25T22:30:00Z'), backup('mon 00:30 CET', '2026-10-25T23:30:00Z'),
    ],
    now: '2026-10-26T10:00:00Z',
    kept: { 'sat 23:30 CEST': 'daily', 'sun 23:30 CET': 'daily+weekly', 'mon 00:30 CET': 'daily+weekly+monthly' },
  },
];

describe('backup retention', () => {
  it.each(examples)('[BKP-2] $title', ({ backups, now, kept, leftAlone = [] }) => {
    const plan = planRetention(backups, new Date(now));
    const expected = Object.fromEntries(Object.entries(kept).filter(([, r]) => r !== undefined));
    expect(summary(plan)).toEqual(expected);
    expect([...plan.prune].sort()).toEqual(backups.map((b) => b.id).filter((id) => !(id in expected) && !leftAlone.includes(id)).sort());
    expect(referencePlan(backups, new Date(now))).toEqual({ keep: expected, prune: [...plan.prune].sort() });
  });

  it('[BKP-2] a year of daily backups: never more than 14 kept, none older than 3 calendar months', () => {
    const year = dailyBackups('2025-10-01', '2026-12-31');
    let most = 0;
    for (let i = 100; i < year.length; i++) {
      const now = new Date(year[i]!.takenAt.getTime() + 11 * HOUR);
      const plan = planRetention(year.slice(0, i + 1), now);
      const cutoff = minusThreeMonths(wallOf(now));
      for (const k of plan.keep.values()) expect(wallOf(k.takenAt).str > cutoff).toBe(true);
      expect(plan.keep.size).toBeGreaterThanOrEqual(7);
      most = Math.max(most, plan.keep.size);
    }
    expect(most).toBeLessThanOrEqual(14);
    const last = planRetention(year, new Date('2026-12-31T12:00:00Z'));
    expect(Object.keys(summary(last)).sort()).toEqual([
      '2026-10-31', '2026-11-30', '2026-12-06', '2026-12-13', '2026-12-20',
      '2026-12-25', '2026-12-26', '2026-12-27', '2026-12-28', '2026-12-29', '2026-12-30', '2026-12-31',
    ]);
  });

  it.each([
    ['clamped day: 30 Nov is kept until 1 March 00:00 Paris', '2026-11-30T09:00:00Z', '2027-02-28T23:00:00.000Z'],
    ['same day-of-month', '2026-11-28T09:00:00Z', '2027-02-28T09:00:00.000Z'],
    ['31 August: 31 November does not exist, so 1 December 00:00', '2026-08-31T08:00:00Z', '2026-11-30T23:00:00.000Z'],
    ['28 February: until 28 May at the same time', '2026-02-28T00:00:00Z', '2026-05-27T23:00:00.000Z'],
    ['3 months later falls in the hour skipped in March: 03:00 summer time', '2025-12-29T01:30:00Z', '2026-03-29T01:00:00.000Z'],
    ['3 months later falls in the hour repeated in October: its first occurrence', '2026-07-25T00:30:00Z', '2026-10-25T00:30:00.000Z'],
  ])('[BKP-2] monthly keep ends exactly when the 3-calendar-month rule stops holding (%s)', (_title, takenAt, until) => {
    const b = [backup('m', takenAt)];
    const plan = planRetention(b, new Date(Date.parse(takenAt) + 40 * DAY));
    expect(plan.keep.get('m')).toMatchObject({ reasons: ['monthly'], keepUntil: new Date(until) });
    const justBefore = new Date(Date.parse(until) - 1);
    expect(planRetention(b, justBefore).keep.has('m')).toBe(true);
    expect(planRetention(b, new Date(until)).prune).toEqual(['m']);
    const [w] = withWalls(b);
    expect(referenceReasons(w!, [w!], justBefore)).toEqual(['monthly']);
    expect(referenceReasons(w!, [w!], new Date(until))).toEqual([]);
  });

  it('[BKP-2] 29–31 May minus 3 months is the end of February: a February backup does not come back', () => {
    const b = [backup('feb28', '2026-02-28T00:00:00Z')]; // 01:00 in Paris
    expect(planRetention(b, new Date('2026-05-28T22:30:00Z')).prune).toEqual(['feb28']); // 29 May 00:30 in Paris
    expect(planRetention(b, new Date('2026-05-30T22:30:00Z')).prune).toEqual(['feb28']); // 31 May 00:30
  });

  it('[BKP-2] "less than 7 days" is 7 × 24 h: across the October change the 7 Paris days last 169 h', () => {
    // Tue 20 Oct 00:10 summer time; now Mon 26 Oct 23:30 winter time: 7 d 0 h 20 min later.
    const backups = [backup('tue', '2026-10-19T22:10:00Z'), backup('wed', '2026-10-21T01:00:00Z')];
    expect(summary(planRetention(backups, new Date('2026-10-26T22:30:00Z')))).toEqual({ wed: 'daily+weekly+monthly' });
    expect(summary(planRetention(backups, new Date('2026-10-26T21:30:00Z')))).toEqual({ tue: 'daily', wed: 'daily+weekly+monthly' });
  });

  it('[BKP-2] lockUntil: a rolling lock while a period is open, the keep\'s end once settled', () => {
    const now = new Date(MAY14);
    const minLock = 2 * DAY;
    const plan = planRetention(month30, now);
    const lock = (id: string, plan_ = plan, min = minLock) => lockUntil(plan_, id, now, min)?.toISOString() ?? null;
    expect(lock('2026-05-14')).toBe('2026-05-16T10:00:00.000Z'); // today: day, week and month open
    expect(lock('2026-05-13')).toBe('2026-05-20T01:00:00.000Z'); // yesterday, settled: + 7 days
    expect(lock('2026-05-10')).toBe('2026-06-07T01:00:00.000Z'); // last Sunday, day and week closed: + 28 days
    expect(lock('2026-04-30')).toBe('2026-07-30T01:00:00.000Z'); // April closed: + 3 months
    expect(lock('2026-05-01')).toBeNull(); // pruned
    expect(lock('nope')).toBeNull();
    // No backup today: yesterday's is settled as daily, still open as this week's and month's newest.
    const noToday = planRetention(without(['2026-05-14']), now);
    expect(summary(noToday)['2026-05-13']).toBe('daily+weekly+monthly');
    expect(lock('2026-05-13', noToday)).toBe('2026-05-20T01:00:00.000Z');
    expect(lock('2026-05-13', noToday, 10 * DAY)).toBe('2026-05-24T10:00:00.000Z');
  });

  it('[BKP-2] rejects duplicate ids, invalid dates and negative durations', () => {
    expect(() => planRetention([backup('a', '2026-05-01T00:00:00Z'), backup('a', '2026-05-02T00:00:00Z')], new Date(MAY14))).toThrow(/duplicate/);
    expect(() => planRetention([backup('a', 'nope')], new Date(MAY14))).toThrow(/not a valid date/);
    expect(() => planRetention([], new Date(MAY14), { staleAfterMs: -1 })).toThrow(/staleAfterMs/);
    expect(() => lockUntil(planRetention([], new Date(MAY14)), 'a', new Date(MAY14), Number.NaN)).toThrow(/minLockMs/);
  });
});

// ---- Properties ---------------------------------------------------------------------------------

const BASE = Date.UTC(2025, 0, 1);
/** Times of day (UTC) near Paris midnight in both seasons, plus any millisecond. */
const timeOfDay = fc.oneof(fc.constantFrom(0, HOUR, 21.5 * HOUR, 22.5 * HOUR, 23.5 * HOUR, DAY - 1), fc.integer({ min: 0, max: DAY - 1 }));
const attempt = fc.record({ time: timeOfDay, complete: fc.oneof({ arbitrary: fc.constant(true), weight: 4 }, { arbitrary: fc.constant(false), weight: 1 }) });
/** Up to 200 days from a random start in 2025–2027, 0 to 3 backups a day (0: a gap). */
const history = fc
  .record({ startDay: fc.integer({ min: 0, max: 900 }), days: fc.array(fc.array(attempt, { maxLength: 3 }), { maxLength: 200, size: 'large' }) })
  .map(({ startDay, days }) => {
    const backups: RetentionCandidate[] = [];
    days.forEach((attempts, i) => attempts.forEach((a) => backups.push({ id: `b${backups.length}`, takenAt: new Date(BASE + (startDay + i) * DAY + a.time), complete: a.complete })));
    return { start: BASE + startDay * DAY, backups };
  });
const latest = (h: { start: number; backups: RetentionCandidate[] }) => Math.max(h.start, ...h.backups.map((b) => b.takenAt.getTime()));
/** `now` at or after every backup, up to 4 months later. */
const afterAll = fc.tuple(history, fc.integer({ min: 0, max: 120 * DAY }), fc.integer({ min: 0, max: 3 * DAY })).map(([h, after, stale]) => ({ ...h, now: new Date(latest(h) + after), stale }));
/** `now` anywhere, even before some backups (clock skew). */
const anyNow = fc.tuple(history, fc.integer({ min: -10 * DAY, max: 330 * DAY })).map(([h, offset]) => ({ ...h, now: new Date(h.start + offset) }));
/** The one place the literal wall-clock rule is not monotonic (the October repeated hour, second pass): see monthlyKeepUntil. */
const inRepeatedHour = (now: Date) => wallOf(new Date(now.getTime() - HOUR)).str === wallOf(now).str;
const RUNS = { numRuns: 200 };

describe('backup retention properties', () => {
  it('[BKP-2] sanity of the reference: wall clock and ISO weeks by hand', () => {
    expect(wallOf(new Date('2026-03-29T01:30:00Z')).str).toBe('2026-03-29 03:30:00.000');
    expect(wallOf(new Date('2026-10-24T22:30:00Z')).str).toBe('2026-10-25 00:30:00.000');
    for (const iso of ['2026-01-01T00:00:00Z', '2026-10-25T01:30:00Z', '2027-07-14T12:34:56Z']) expect(wallOf(new Date(iso)).str.slice(0, 19)).toBe(new Date(iso).toLocaleString('sv-SE', { timeZone: 'Europe/Paris' }));
    expect(['2026-12-31', '2027-01-03', '2027-01-04', '2025-12-29', '2021-01-03'].map((d) => isoWeek(+d.slice(0, 4), +d.slice(5, 7), +d.slice(8))))
      .toEqual(['2026-W53', '2026-W53', '2027-W1', '2026-W1', '2020-W53']);
  });

  it('[BKP-2] keeps exactly what the naive reference keeps, for the same reasons, and prunes the same', () => {
    fc.assert(
      fc.property(anyNow, ({ backups, now }) => {
        fc.pre(!inRepeatedHour(now));
        const plan = planRetention(backups, now);
        expect({ keep: summary(plan), prune: [...plan.prune].sort() }).toEqual(referencePlan(backups, now));
      }),
      RUNS,
    );
  });

  it('[BKP-2] keepUntil is the exact instant the backup stops being kept when nothing newer arrives', () => {
    fc.assert(
      fc.property(anyNow, ({ backups, now }) => {
        const plan = planRetention(backups, now);
        const all = withWalls(backups);
        for (const [id, k] of plan.keep) {
          const b = all.find((x) => x.id === id)!;
          expect(referenceReasons(b, all, new Date(k.keepUntil.getTime() - 1)).length).toBeGreaterThan(0);
          expect(referenceReasons(b, all, k.keepUntil)).toEqual([]);
        }
      }),
      RUNS,
    );
  });

  it('[BKP-2] at most 14 kept, all complete, none older than 3 calendar months; keep and prune are disjoint ids', () => {
    fc.assert(
      fc.property(afterAll, ({ backups, now, stale }) => {
        const plan = planRetention(backups, now, { staleAfterMs: stale });
        const byId = new Map(backups.map((b) => [b.id, b]));
        expect(plan.keep.size).toBeLessThanOrEqual(14);
        const cutoff = minusThreeMonths(wallOf(now));
        for (const id of plan.keep.keys()) {
          expect(byId.get(id)?.complete).toBe(true);
          expect(wallOf(byId.get(id)!.takenAt).str > cutoff).toBe(true);
        }
        expect(new Set(plan.prune).size).toBe(plan.prune.length);
        for (const id of plan.prune) expect(byId.has(id) && !plan.keep.has(id)).toBe(true);
        for (const b of backups) {
          const decided = plan.keep.has(b.id) || plan.prune.includes(b.id);
          expect(decided).toBe(b.complete || now.getTime() - b.takenAt.getTime() > stale);
        }
      }),
      RUNS,
    );
  });

  it('[BKP-2] the newest complete backup of each of the last 7 Paris days is kept', () => {
    fc.assert(
      fc.property(afterAll, ({ backups, now }) => {
        const plan = planRetention(backups, now);
        const today = wallOf(now).date;
        const oldest = new Date(Date.parse(`${today}T00:00:00Z`) - 6 * DAY).toISOString().slice(0, 10);
        const recent = withWalls(backups.filter((b) => b.complete && now.getTime() - b.takenAt.getTime() < 9 * DAY));
        for (let k = 0; k < 7; k++) {
          const day = new Date(Date.parse(`${today}T00:00:00Z`) - k * DAY).toISOString().slice(0, 10);
          const ofDay = recent.filter((b) => b.wall.date === day);
          const newest = ofDay.sort((a, b) => b.takenAt.getTime() - a.takenAt.getTime() || (a.id < b.id ? 1 : -1))[0];
          if (!newest) continue;
          if (now.getTime() - newest.takenAt.getTime() < 7 * DAY) expect(plan.keep.get(newest.id)?.reasons).toContain('daily');
          // Aged out within the last 7 Paris days: only when those days last 169 h (October change).
          else expect(now.getTime() - startOfParisDay(oldest).getTime()).toBeGreaterThan(7 * DAY);
        }
      }),
      RUNS,
    );
  });

  it('[BKP-2] lockUntil: at least now for every kept backup, null for every pruned one', () => {
    fc.assert(
      fc.property(afterAll, fc.integer({ min: 0, max: 30 * DAY }), ({ backups, now }, minLock) => {
        const plan = planRetention(backups, now);
        for (const [id, k] of plan.keep) {
          const until = lockUntil(plan, id, now, minLock)!.getTime();
          expect(until).toBeGreaterThanOrEqual(now.getTime());
          expect(until).toBeLessThanOrEqual(Math.max(k.keepUntil.getTime(), now.getTime() + minLock));
        }
        for (const id of plan.prune) expect(lockUntil(plan, id, now, minLock)).toBeNull();
      }),
      RUNS,
    );
  });
});
