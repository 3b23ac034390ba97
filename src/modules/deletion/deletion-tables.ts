/** Control-plane table of the deletion module (see migrations/20261126110000_deletion.sql). */

export type DeletionState = 'pending' | 'reactivated' | 'destroying' | 'destroyed';
/** Why a tenant was cancelled: the customer, the end of its contract, an unconverted trial, or staff. */
export type CancelCause = 'customer' | 'contract_end' | 'trial_expired' | 'staff';
/** The rule that destroyed a tenant (shown on the certificate). */
export type DestructionRule = 'grace_period_expired' | 'customer_request' | 'staff';

export interface TenantDeletionsTable {
  tenant_id: string;
  customer_id: string;
  state: DeletionState;
  cancel_cause: CancelCause;
  cancel_reason: string | null;
  cancelled_at: Date;
  cancelled_by: string | null;
  destroy_after: Date;
  access_applied: boolean;
  rule: DestructionRule | null;
  destroyed_at: Date | null;
  destroyed_by: string | null;
  tenant_name: string;
  region: string;
  tenant_database_id: string | null;
  database_name: string | null;
  role_name: string | null;
  server_name: string | null;
  database_dropped_at: Date | null;
  attachments_count: number | null;
  /** int8: comes back as a string. */
  attachments_bytes: string | null;
  attachments_deleted_at: Date | null;
  completed_at: Date | null;
  backups_at_destruction: number | null;
  lease_until: Date | null;
  attempts: number;
  last_error: string | null;
  purge_at: Date | null;
  key_shredded_at: Date | null;
  backups_deleted_at: Date | null;
  backups_checked_at: Date | null;
  updated_at: Date;
}

export interface DeletionTables {
  tenant_deletions: TenantDeletionsTable;
}
