import type { ColumnType } from 'kysely';
/** Control-plane tables of the metering module (see migrations/20261126150000_metering.sql). */
export interface UsageSamplesTable {
  tenant_id: string;
  sampled_at: Date;
  tenant_database_id: string;
  database_bytes: string;
  storage_bytes: string;
  db_active_ms: number;
  db_stats_reset: Date | null;
  db_time_ms: number;
}

export interface UsageDaysTable {
  tenant_id: string;
  day: string;
  db_time_ms: number;
  /** Havre's own CPU attributed to the tenant's requests (ms). */
  havre_cpu_ms: ColumnType<number, number | undefined, number>;
  peak_database_bytes: string;
  peak_storage_bytes: string;
  samples: number;
}

export interface UsageAlertsTable {
  tenant_id: string;
  month: string;
  allowance: 'cpu' | 'database' | 'storage';
  threshold: 80 | 100;
  sent_at: Date;
}

export interface MeteringTables {
  usage_samples: UsageSamplesTable;
  usage_days: UsageDaysTable;
  usage_alerts: UsageAlertsTable;
}
