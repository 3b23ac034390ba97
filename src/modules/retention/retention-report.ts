/**
 * PRV-4: the retention report — for each declared rule, a live query of the oldest record still
 * under it (not a stored claim), compared with the rule's period, and the rule's last run.
 *
 * Status of a rule at `now`:
 * - `ok`: no record is older than the period;
 * - `due`: some are, by less than one daily cycle (the job runs once a day, so between two runs a
 *   record may outlive its period by up to a day; the next run removes it);
 * - `overdue`: older than that — the job did not run or did not work: a broken promise;
 * - `not_registered`: enabled in config, but no module registered its SQL — a broken promise;
 * - `not_enforced`: declared with `enabled: false` (its data does not exist yet).
 */
import { describePeriod, periodStart, type RetentionRule } from '../../config/retention-rules.ts';
import type { Db } from '../../db/db.ts';
import type { RetentionRegistry } from './retention-registry.ts';
import type { RetentionRepo } from './retention-repo.ts';

export type RuleStatus = 'ok' | 'due' | 'overdue' | 'not_registered' | 'not_enforced';

export interface RuleReport {
  id: string;
  category: string;
  legalBasis: string;
  startsAt: string;
  period: string;
  action: RetentionRule['action'];
  owner: string;
  enabled: boolean;
  /** When the clock of the oldest record under the rule started (live query); null: none. */
  oldestStartedAt: string | null;
  oldestAgeDays: number | null;
  status: RuleStatus;
  lastRun: { finishedAt: string; asOf: string; simulated: boolean; status: string; affected: number; batches: number } | null;
}

/** Slack of the `due` status: one daily cycle plus the check interval of the background loop. */
export function dueSlackMs(tickMs: number): number {
  return 24 * 3_600_000 + tickMs;
}

/** The report at `now` (see the statuses above); `ok` is false when any rule is overdue or not registered. */
export async function retentionReport(
  deps: { db: Db; repo: RetentionRepo; registry: RetentionRegistry; rules: Readonly<Record<string, RetentionRule>>; tickMs: number },
  now: Date,
): Promise<{ ok: boolean; at: string; rules: RuleReport[] }> {
  const last = await deps.repo.lastRuns();
  const rules: RuleReport[] = [];
  for (const [id, rule] of Object.entries(deps.rules)) {
    const category = deps.registry.get(id);
    const oldest = category ? await category.oldest(deps.db) : null;
    const cutoff = periodStart(now, rule.period);
    let status: RuleStatus;
    if (!rule.enabled) status = 'not_enforced';
    else if (!category) status = 'not_registered';
    else if (!oldest || oldest >= cutoff) status = 'ok';
    else status = oldest.getTime() >= cutoff.getTime() - dueSlackMs(deps.tickMs) ? 'due' : 'overdue';
    const run = last.get(id);
    rules.push({
      id, category: rule.category, legalBasis: rule.legalBasis, startsAt: rule.startsAt, period: describePeriod(rule.period), action: rule.action, owner: rule.owner, enabled: rule.enabled,
      oldestStartedAt: oldest?.toISOString() ?? null,
      oldestAgeDays: oldest ? Math.floor(((now.getTime() - oldest.getTime()) / 86_400_000) * 10) / 10 : null,
      status,
      lastRun: run ? { finishedAt: run.finished_at.toISOString(), asOf: run.as_of.toISOString(), simulated: run.simulated, status: run.status, affected: Number(run.affected), batches: run.batches } : null,
    });
  }
  return { ok: rules.every((r) => r.status !== 'overdue' && r.status !== 'not_registered'), at: now.toISOString(), rules };
}
