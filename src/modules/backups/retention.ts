/**
 * Backup retention (promise BKP-2): which backups to keep, which to prune, and how long a kept
 * backup's write-once objects must stay locked.
 *
 * Periods are Paris periods: the calendar day, ISO week (Monday–Sunday) and calendar month of a
 * backup are those of its `takenAt` in Europe/Paris, across DST changes (a backup at 22:30 UTC on
 * 29 March 2026 was taken at 00:30 on Monday 30 March in Paris: a new day and a new ISO week).
 * Paris dates come from src/lib/paris-date.ts and src/lib/business-days.ts (Intl, no tz library).
 */
import { addDays, parisDate, parisOffsetMinutes } from '../../lib/paris-date.ts';
import { endOfParisDay, startOfParisDay } from '../../lib/business-days.ts';

export interface RetentionCandidate {
  id: string;
  takenAt: Date;
  /** Only complete backups count: running, failed or incomplete ones are never keepers. */
  complete: boolean;
}

export type KeepReason = 'daily' | 'weekly' | 'monthly';

export interface KeptBackup {
  /** Why it is kept, in the order daily, weekly, monthly (at least one). */
  reasons: KeepReason[];
  /**
   * When it stops being kept if nothing newer arrives in its periods: the latest, over its
   * reasons, of the instant that reason's age limit is reached (see planRetention).
   */
  keepUntil: Date;
  /** The backup's `takenAt`, so that lockUntil can tell which of its periods have closed. */
  takenAt: Date;
}

export interface RetentionPlan {
  /** Kept backups by id, newest first. */
  keep: Map<string, KeptBackup>;
  /**
   * Ids to delete, oldest first: complete backups that are not kept, and non-complete ones older
   * than `staleAfterMs`. Younger non-complete backups are in neither list: they may be running.
   */
  prune: string[];
}

export interface RetentionOptions {
  /** A non-complete backup older than this (now − takenAt > staleAfterMs) is pruned. Default 24 h. */
  staleAfterMs?: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** "Less than 7 days old": now − takenAt < 7 × 24 h (elapsed time, not calendar days). */
export const DAILY_KEEP_MS = 7 * DAY_MS;
/** "Less than 4 weeks old": now − takenAt < 28 × 24 h. */
export const WEEKLY_KEEP_MS = 28 * DAY_MS;
/** "Less than 3 calendar months old", in Paris wall-clock time: see monthlyKeepUntil. */
export const MONTHLY_KEEP_MONTHS = 3;
export const DEFAULT_STALE_AFTER_MS = DAY_MS;

const REASONS: readonly KeepReason[] = ['daily', 'weekly', 'monthly'];

interface Periods {
  /** Paris calendar date, `YYYY-MM-DD`. */
  daily: string;
  /** The Monday (`YYYY-MM-DD`) of the Paris ISO week: one key per ISO week, across year ends. */
  weekly: string;
  /** `YYYY-MM` in Paris. */
  monthly: string;
}

function periodsOf(takenAt: Date): Periods {
  const date = parisDate(takenAt);
  const isoWeekday = (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  return { daily: date, weekly: addDays(date, -isoWeekday), monthly: date.slice(0, 7) };
}

/** The first instant after the period (Paris midnight starting the next day / week / month). */
function periodEnd(reason: KeepReason, p: Periods): Date {
  if (reason === 'daily') return endOfParisDay(p.daily);
  if (reason === 'weekly') return endOfParisDay(addDays(p.weekly, 6));
  const [y, m] = p.monthly.split('-').map(Number) as [number, number];
  return startOfParisDay(new Date(Date.UTC(y, m, 1)).toISOString().slice(0, 10));
}

/** Paris's UTC offset at `instant`, in ms (1 h in winter, 2 h in summer). */
function parisOffsetMs(instant: number): number {
  return parisOffsetMinutes(new Date(instant)) * 60_000;
}

/**
 * The first instant whose Paris wall-clock time is ≥ `wall` (a wall time written as if it were
 * UTC): the time itself, its first occurrence when the clocks go back, and the end of the gap
 * (03:00 summer time) when it falls in the hour skipped in March. DST changes are months apart,
 * so the offsets a day before and a day after are the only candidates.
 */
function firstInstantAtParisWall(wall: number): number {
  const before = parisOffsetMs(wall - DAY_MS);
  const after = parisOffsetMs(wall + DAY_MS);
  if (parisOffsetMs(wall - before) === before) return wall - before;
  if (parisOffsetMs(wall - after) === after) return wall - after;
  // In the hour skipped in spring: the change happened within the hour before `wall − before`,
  // and Paris changes its clocks on the hour in UTC (01:00 UTC).
  return Math.floor((wall - before) / HOUR_MS) * HOUR_MS;
}

/**
 * When a monthly keeper taken at `takenAt` stops being "less than 3 calendar months old".
 *
 * The rule: a backup is less than 3 calendar months old at `now` when takenAt > now minus 3
 * calendar months, computed on the Paris wall clock: same day-of-month and time of day, 3 months
 * earlier; when that day does not exist (29–31 May − 3 months), the cutoff is clamped to the end
 * of the shorter month (28 February 23:59:59.999): all of February is then older than 3 months.
 * (Clamping only the day, "28 February at the same time", would make the rule go back and forth:
 * a backup of 28 February 01:00 would be out on 28 May from 01:00 and back in on 29 May 00:00.)
 * Solved for `now`: the backup is kept while now < takenAt + 3 months on the Paris wall clock,
 * where a day missing from the target month rolls over to 00:00 on the 1st of the next (a backup
 * of 30 November is kept until 1 March 00:00). We return the first instant at which that wall time
 * is reached, so keepUntil is exact and once out, a backup never comes back (the wall-clock rule
 * would readmit it for part of the hour the clocks repeat on an October night).
 */
function monthlyKeepUntil(takenAt: Date): Date {
  const wall = new Date(takenAt.getTime() + parisOffsetMs(takenAt.getTime()));
  const y = wall.getUTCFullYear();
  const m = wall.getUTCMonth() + MONTHLY_KEEP_MONTHS;
  const d = wall.getUTCDate();
  const daysInTarget = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  const target =
    d <= daysInTarget
      ? Date.UTC(y, m, d, wall.getUTCHours(), wall.getUTCMinutes(), wall.getUTCSeconds(), wall.getUTCMilliseconds())
      : Date.UTC(y, m + 1, 1);
  return new Date(firstInstantAtParisWall(target));
}

function reasonKeepUntil(reason: KeepReason, takenAt: Date): Date {
  if (reason === 'daily') return new Date(takenAt.getTime() + DAILY_KEEP_MS);
  if (reason === 'weekly') return new Date(takenAt.getTime() + WEEKLY_KEEP_MS);
  return monthlyKeepUntil(takenAt);
}

interface Entry {
  b: RetentionCandidate;
  t: number;
  periods: Periods;
}

/** Newest first; the same instant goes to the greater id, so every period has exactly one newest. */
function newerFirst(a: Entry, b: Entry): number {
  return b.t - a.t || (a.b.id < b.b.id ? 1 : a.b.id > b.b.id ? -1 : 0);
}

function checkInstant(what: string, d: Date): number {
  const t = d instanceof Date ? d.getTime() : NaN;
  if (Number.isNaN(t)) throw new Error(`retention: ${what} is not a valid date`);
  return t;
}

function checkDuration(what: string, ms: number): void {
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`retention: ${what} must be a finite duration ≥ 0 ms, not ${ms}`);
}

/**
 * BKP-2 retention. A complete backup is kept while it is
 * - **daily**: the newest complete backup of its Paris calendar day, and now − takenAt < 7 × 24 h;
 * - **weekly**: the newest complete backup of its Paris ISO week, and now − takenAt < 28 × 24 h;
 * - **monthly**: the newest complete backup of its Paris calendar month, and takenAt > now − 3
 *   calendar months (Paris wall clock, same day and time; a day missing from the shorter month
 *   clamps to that month's last instant; see monthlyKeepUntil);
 *
 * every other complete backup is pruned. "Newest" is the latest `takenAt` among the *complete*
 * backups of the period (ties: greater id), so a running, failed or incomplete backup never
 * displaces a complete one, and a missed day leaves no hole: the newest complete backup of the
 * week or month stands in. Elapsed-time limits, rather than calendar days, keep the rule free of
 * DST arithmetic; the price is that the 7 × 24 h window touches 8 Paris days at some moments, and
 * only 7 × 24 h of the 169 h of the 7 Paris days around the October change.
 *
 * Why at most 14: if some backup is a daily keeper, the newest complete backup overall is too, and
 * it is also its week's and its month's keeper. The 28 × 24 h window touches at most 5 ISO weeks and
 * the 3-month window at most 4 months, so at most 4 weekly and 3 monthly keepers are not daily;
 * with 8 daily keepers all 8 days have one, including the last Sunday, whose keeper is also its
 * week's: 4 extra weekly only with ≤ 7 daily. Hence ≤ 7 + 4 + 3. This assumes no backup is dated
 * after `now` (clock skew): such a backup counts as young, so it is kept rather than pruned.
 *
 * Non-complete backups are pruned once now − takenAt > `staleAfterMs` (default 24 h) and left
 * alone before. Throws on duplicate ids, invalid dates or a negative `staleAfterMs`.
 */
export function planRetention(backups: readonly RetentionCandidate[], now: Date, options: RetentionOptions = {}): RetentionPlan {
  const nowMs = checkInstant('now', now);
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
  checkDuration('staleAfterMs', staleAfterMs);
  const seen = new Set<string>();
  const complete: Entry[] = [];
  const prune: { id: string; t: number }[] = [];
  for (const b of backups) {
    if (seen.has(b.id)) throw new Error(`retention: duplicate backup id ${b.id}`);
    seen.add(b.id);
    const t = checkInstant(`takenAt of backup ${b.id}`, b.takenAt);
    if (b.complete) complete.push({ b, t, periods: periodsOf(b.takenAt) });
    else if (nowMs - t > staleAfterMs) prune.push({ id: b.id, t });
  }

  complete.sort(newerFirst);
  const newest: Record<KeepReason, Set<string>> = { daily: new Set(), weekly: new Set(), monthly: new Set() };
  const keep = new Map<string, KeptBackup>();
  for (const e of complete) {
    const reasons: KeepReason[] = [];
    let keepUntil = -Infinity;
    for (const reason of REASONS) {
      const period = e.periods[reason];
      if (newest[reason].has(period)) continue; // a newer complete backup holds this period
      newest[reason].add(period);
      const until = reasonKeepUntil(reason, e.b.takenAt).getTime();
      if (nowMs < until) {
        reasons.push(reason);
        keepUntil = Math.max(keepUntil, until);
      }
    }
    if (reasons.length > 0) keep.set(e.b.id, { reasons, keepUntil: new Date(keepUntil), takenAt: new Date(e.t) });
    else prune.push({ id: e.b.id, t: e.t });
  }
  prune.sort((a, b) => a.t - b.t || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { keep, prune: prune.map((p) => p.id) };
}

/**
 * The retain-until date a stored backup's objects should carry at `now` (the `now` of the plan),
 * on write-once storage where a lock can be extended, never shortened. Null unless kept.
 *
 * For each reason the backup is kept for:
 * - its period (Paris day, ISO week or month) has **closed** at `now`: no newer backup can arrive
 *   in it any more, so the backup cannot be displaced and keeps that place until its age limit:
 *   lock until that reason's keepUntil (takenAt + 7 d, + 28 d, or + 3 calendar months);
 * - its period is **still open**: a newer backup may displace it tomorrow, after which it must be
 *   deletable soon, so it gets a rolling lock until now + `minLockMs`, extended at each run.
 *
 * The result is the latest of these. (A backup that completes after its period has closed can
 * still displace a settled keeper; the displaced one then stays locked, i.e. kept, a little longer
 * than the plan needs: the lock errs on the side of keeping.)
 */
export function lockUntil(plan: RetentionPlan, id: string, now: Date, minLockMs: number): Date | null {
  const nowMs = checkInstant('now', now);
  checkDuration('minLockMs', minLockMs);
  const kept = plan.keep.get(id);
  if (!kept) return null;
  const periods = periodsOf(kept.takenAt);
  let until = -Infinity;
  for (const reason of kept.reasons) {
    const closed = nowMs >= periodEnd(reason, periods).getTime();
    until = Math.max(until, closed ? reasonKeepUntil(reason, kept.takenAt).getTime() : nowMs + minLockMs);
  }
  return new Date(until);
}
