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
  /** SHA-256 of the entry's personal part (see audit_personal), salted; null when it has none. */
  personal_digest: string | null;
  prev_hash: string;
  hash: string;
}

/** The personal part of an audit entry (ACC-5): erasable, outside the chain but hashed into it. */
export interface AuditPersonalTable {
  seq: string;
  at: Date;
  person_id: string | null;
  salt: string;
  ip: string | null;
  /** The personal keys moved out of the entry's data (`email`). */
  data: unknown;
}

export interface AuditTables {
  audit_log: AuditLogTable;
  audit_personal: AuditPersonalTable;
}
