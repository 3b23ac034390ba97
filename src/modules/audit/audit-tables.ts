/** Control-plane table of the audit module (SEC-4). */
export type AuditActorType = 'user' | 'staff' | 'system' | 'cli';

export interface AuditLogTable {
  seq: string;
  at: Date;
  actor_type: AuditActorType;
  actor_id: string | null;
  action: string;
  subject_type: string | null;
  subject_id: string | null;
  customer_id: string | null;
  ip: string | null;
  data: unknown;
  prev_hash: string;
  hash: string;
}

export interface AuditTables {
  audit_log: AuditLogTable;
}
