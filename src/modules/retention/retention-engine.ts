/**
 * PRV-4: the daily retention job. A function of `(deps, now)`: every enabled rule is applied with
 * the cutoff `now − period`, in batches of `batchSize` rows, one short transaction each (no lock
 * held long, other writers wait at most one batch), then the oldest remaining record is measured
 * and one evidence row is written: rule, counts, times, age — never personal data.
 *
 * A rule that fails does not stop the others: its evidence row says `failed` with an error code.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { periodStart, type RetentionRule } from '../../config/retention-rules.ts';
import type { RetentionRegistry } from './retention-registry.ts';
import type { RetentionRepo } from './retention-repo.ts';
import type { RetentionRunStatus } from './retention-tables.ts';

export interface RetentionEngineDeps {
  db: Db;
  repo: RetentionRepo;
  registry: RetentionRegistry;
  rules: Readonly<Record<string, RetentionRule>>;
  batchSize: number;
  /** Wall time of the evidence (started/finished); `now` is the time the rules are applied at. */
  clock: Clock;
  /** lock_timeout of each batch: a batch never waits long behind another transaction. */
  lockTimeoutMs?: number;
}

export interface RuleOutcome {
  ruleId: string;
  status: RetentionRunStatus;
  affected: number;
  batches: number;
  cutoff: Date;
  oldestRemainingSeconds: number | null;
  error: string | null;
}

/** An error's code or class only: messages may quote data (a row, an e-mail), evidence must not. */
function errorCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : typeof e?.name === 'string' ? e.name : 'error';
  return code.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 80) || 'error';
}

/**
 * Applies every enabled rule (or those in `only`) at `now`; returns one outcome per rule, each
 * also written to `retention_runs` under one run id. `simulated`: an `--as-of` run (flagged in
 * the evidence).
 */
export async function runRetention(deps: RetentionEngineDeps, now: Date, options: { simulated?: boolean; only?: string[] } = {}): Promise<{ runId: string; outcomes: RuleOutcome[] }> {
  const runId = randomUUID();
  const outcomes: RuleOutcome[] = [];
  const lockTimeout = `${Math.max(1, Math.floor(deps.lockTimeoutMs ?? 2_000))}ms`;
  for (const [ruleId, rule] of Object.entries(deps.rules)) {
    if (!rule.enabled || (options.only && !options.only.includes(ruleId))) continue;
    const startedAt = deps.clock.now();
    const cutoff = periodStart(now, rule.period);
    const outcome: RuleOutcome = { ruleId, status: 'ok', affected: 0, batches: 0, cutoff, oldestRemainingSeconds: null, error: null };
    const category = deps.registry.get(ruleId);
    if (!category) {
      outcome.status = 'not_registered';
    } else {
      try {
        for (;;) {
          const n = await deps.db.transaction().execute(async (trx) => {
            await sql`SELECT set_config('lock_timeout', ${lockTimeout}, true)`.execute(trx);
            // No wait for the WAL flush at COMMIT: the batch's row locks end at once. A crash may
            // undo the last batches' deletions — the next run deletes those rows again; nothing
            // that must be kept is at stake.
            await sql`SELECT set_config('synchronous_commit', 'off', true)`.execute(trx);
            return category.apply(trx, cutoff, deps.batchSize);
          });
          if (n > 0) outcome.batches++;
          outcome.affected += n;
          if (n < deps.batchSize) {
            // A short batch usually means the end, but a row updated meanwhile (its lock follows it
            // to a new version the DELETE does not see) also shortens one: go on while expired rows
            // remain and the last batch still deleted something (nothing at all: they are locked).
            const oldest = n === 0 ? null : await category.oldest(deps.db);
            if (!oldest || oldest.getTime() >= cutoff.getTime()) break;
          }
        }
        const oldest = await category.oldest(deps.db);
        outcome.oldestRemainingSeconds = oldest ? Math.max(0, Math.floor((now.getTime() - oldest.getTime()) / 1000)) : null;
      } catch (err) {
        outcome.status = 'failed';
        outcome.error = errorCode(err);
      }
    }
    outcomes.push(outcome);
    await deps.repo.insertRun({
      run_id: runId, rule_id: ruleId, action: rule.action, as_of: now, cutoff, simulated: options.simulated ?? false, status: outcome.status,
      affected: outcome.affected, batches: outcome.batches, oldest_remaining_seconds: outcome.oldestRemainingSeconds, error: outcome.error,
      started_at: startedAt, finished_at: deps.clock.now(),
    });
  }
  return { runId, outcomes };
}
