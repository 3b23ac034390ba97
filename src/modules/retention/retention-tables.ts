/** Control-plane tables of the retention engine (see migrations/20261126130000_retention.sql). */
import type { ColumnType } from 'kysely';

export type RetentionRunStatus = 'ok' | 'failed' | 'not_registered';

/** PRV-4 evidence: one row per rule per run; counts, times and ages only — never personal data. */
export interface RetentionRunsTable {
  /** int8 identity; comes back as a string. */
  id: ColumnType<string, never, never>;
  run_id: string;
  rule_id: string;
  action: 'delete' | 'anonymise';
  as_of: Date;
  cutoff: Date;
  simulated: boolean;
  status: RetentionRunStatus;
  /** int8: comes back as a string. */
  affected: ColumnType<string, number, number>;
  batches: number;
  oldest_remaining_seconds: ColumnType<string | null, number | null, number | null>;
  error: string | null;
  started_at: Date;
  finished_at: Date;
}

export interface RetentionScheduleTable {
  id: ColumnType<boolean, boolean | undefined, never>;
  /** A `date` column: comes back as a Date at midnight UTC… or local; only compared in SQL. */
  last_day: ColumnType<Date, string, string>;
}

export interface RetentionTables {
  retention_runs: RetentionRunsTable;
  retention_schedule: RetentionScheduleTable;
}
