/** Control-plane tables of the backups module (see migrations/20261126100000_backups.sql). */

export type BackupTrigger = 'scheduled' | 'on_demand' | 'pre_upgrade' | 'pre_restore';
export type BackupState = 'running' | 'complete' | 'incomplete' | 'failed' | 'pruned';
export type VerificationState = 'pending' | 'running' | 'verified' | 'failed';
export type BackupPart = 'manifest' | 'database' | 'files';
export const BACKUP_PARTS: readonly BackupPart[] = ['database', 'files', 'manifest'];

export interface BackupKeysTable {
  tenant_id: string;
  key_id: string;
  wrapped_key: string | null;
  created_at: Date;
  shredded_at: Date | null;
}

export interface BackupsTable {
  id: string;
  tenant_id: string;
  tenant_database_id: string;
  key_id: string;
  trigger: BackupTrigger;
  state: BackupState;
  started_at: Date;
  taken_at: Date | null;
  completed_at: Date | null;
  worker_id: string | null;
  lease_until: Date | null;
  size_bytes: string | null;
  manifest: unknown;
  error: string | null;
  attempts: number;
  verification: VerificationState;
  verification_lease_until: Date | null;
  verified_at: Date | null;
  verification_error: string | null;
  retain_until: Date;
  pruned_at: Date | null;
  requested_by: string | null;
}

export interface BackupCopiesTable {
  backup_id: string;
  location: string;
  part: BackupPart;
  object_key: string;
  size_bytes: string;
  sha256: string;
  state: 'checked' | 'corrupt' | 'deleted';
  checked_at: Date;
}

export interface BackupRestoresTable {
  id: string;
  backup_id: string;
  tenant_id: string;
  mode: 'new' | 'in-place';
  state: 'running' | 'succeeded' | 'failed';
  target_database_id: string | null;
  safety_backup_id: string | null;
  result_tenant_id: string | null;
  worker_id: string;
  lease_until: Date;
  requested_by: string | null;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
}

export interface BackupsTables {
  backup_keys: BackupKeysTable;
  backups: BackupsTable;
  backup_copies: BackupCopiesTable;
  backup_restores: BackupRestoresTable;
}
