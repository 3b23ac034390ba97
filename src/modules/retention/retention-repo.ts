/**
 * SQL of the retention engine's own tables: the evidence (`retention_runs`) and the daily claim
 * (`retention_schedule`). Every method takes an optional executor.
 */
import { sql, type Insertable, type Selectable } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { RetentionRunsTable } from './retention-tables.ts';

export type RetentionRunRow = Selectable<RetentionRunsTable>;

export function createRetentionRepo(db: Db) {
  return {
    async insertRun(values: Insertable<RetentionRunsTable>, trx: Executor = db): Promise<void> {
      await trx.insertInto('retention_runs').values(values).execute();
    },

    /**
     * Claims the daily run of `day` (YYYY-MM-DD) by moving `last_day` forward (compare-and-set):
     * true for exactly one node per day, whatever the number of nodes.
     */
    async claimDay(day: string, trx: Executor = db): Promise<boolean> {
      const res = await sql`
        INSERT INTO retention_schedule (id, last_day) VALUES (true, ${day}::date)
        ON CONFLICT (id) DO UPDATE SET last_day = EXCLUDED.last_day WHERE retention_schedule.last_day < EXCLUDED.last_day`.execute(trx);
      return Number(res.numAffectedRows ?? 0n) === 1;
    },

    /** The latest evidence row of every rule (simulated runs included, flagged). */
    async lastRuns(trx: Executor = db): Promise<Map<string, RetentionRunRow>> {
      const rows = await trx.selectFrom('retention_runs').selectAll().distinctOn('rule_id').orderBy('rule_id').orderBy('finished_at', 'desc').orderBy('id', 'desc').execute();
      return new Map(rows.map((r) => [r.rule_id, r]));
    },

    listRuns(runId: string, trx: Executor = db): Promise<RetentionRunRow[]> {
      return trx.selectFrom('retention_runs').selectAll().where('run_id', '=', runId).orderBy('id').execute();
    },
  };
}

export type RetentionRepo = ReturnType<typeof createRetentionRepo>;
