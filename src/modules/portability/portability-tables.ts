import type { Generated } from 'kysely';

/** Control-plane tables of the portability module (see migrations/20261126120000_portability.sql). */

export type ExportState = 'running' | 'complete' | 'failed' | 'expired';

export interface ExportsTable {
  id: string;
  tenant_id: string;
  requested_by: string | null;
  locale: 'fr' | 'en';
  state: ExportState;
  phase: Generated<string>;
  tables_done: Generated<number>;
  tables_total: Generated<number>;
  rows_written: Generated<string>;
  rows_total: Generated<string>;
  size_bytes: string | null;
  sha256: string | null;
  error: string | null;
  worker_id: string | null;
  lease_until: Date | null;
  started_at: Date;
  completed_at: Date | null;
  expires_at: Date | null;
}

export interface PortabilityTables {
  exports: ExportsTable;
}
