-- Deletion lifecycle (TEN-3, TEN-4, TEN-5) and the purge of a destroyed tenant's backups (BKP-7).
--
-- One row per tenant that was cancelled: it drives the grace period, the destruction (a sequence of
-- idempotent steps, each recorded by its own timestamp, so that a crash is finished by the next
-- run) and the purge of the backups, and it is the deletion certificate's record — never deleted,
-- kept for the operator's records. A reactivated tenant keeps its row (state `reactivated`) until
-- it is cancelled again, which starts a new grace period on the same row.
CREATE TABLE tenant_deletions (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
  customer_id uuid NOT NULL REFERENCES customers (id),
  -- `pending`: cancelled, in its grace period; `destroying`: the tenant is destroyed (the point of
  -- no return, one transaction with the tenant's transition) and the steps run; `destroyed`: every
  -- step done; `reactivated`: the owner (or staff) brought it back within the grace period.
  state text NOT NULL CHECK (state IN ('pending', 'reactivated', 'destroying', 'destroyed')),
  -- Why the tenant was cancelled.
  cancel_cause text NOT NULL CHECK (cancel_cause IN ('customer', 'contract_end', 'trial_expired', 'staff')),
  cancel_reason text CHECK (length(cancel_reason) <= 500),
  cancelled_at timestamptz NOT NULL,
  cancelled_by text,
  destroy_after timestamptz NOT NULL,
  -- Whether the tenant role's LOGIN matches the state (NOLOGIN while pending; LOGIN once
  -- reactivated): false until applied on the server, so a crash in between is repaired.
  access_applied boolean NOT NULL DEFAULT false,
  -- The rule that destroyed it.
  rule text CHECK (rule IN ('grace_period_expired', 'customer_request', 'staff')),
  destroyed_at timestamptz,
  destroyed_by text,
  -- What was destroyed (copied before the steps run: the certificate must outlive the fleet rows).
  tenant_name text NOT NULL,
  region text NOT NULL,
  tenant_database_id uuid REFERENCES tenant_databases (id),
  database_name text,
  role_name text,
  server_name text,
  -- Steps of the destruction, each idempotent.
  database_dropped_at timestamptz,
  attachments_count int,
  attachments_bytes bigint,
  attachments_deleted_at timestamptz,
  completed_at timestamptz,
  backups_at_destruction int,
  -- A worker's lease on a destroying row (wall clock: process liveness), and the last failure.
  lease_until timestamptz,
  attempts int NOT NULL DEFAULT 0,
  last_error text CHECK (length(last_error) <= 1000),
  -- BKP-7: the date at which the backup key is shredded at the latest (destruction + 12 months),
  -- when it was, and when the last backup object was deleted; objects are retried daily.
  purge_at timestamptz,
  key_shredded_at timestamptz,
  backups_deleted_at timestamptz,
  backups_checked_at timestamptz,
  updated_at timestamptz NOT NULL,
  CONSTRAINT tenant_deletions_destroyed CHECK (state NOT IN ('destroying', 'destroyed') OR (rule IS NOT NULL AND destroyed_at IS NOT NULL AND purge_at IS NOT NULL))
);
CREATE INDEX tenant_deletions_due_idx ON tenant_deletions (destroy_after) WHERE state = 'pending';
CREATE INDEX tenant_deletions_work_idx ON tenant_deletions (state) WHERE state = 'destroying' OR access_applied = false;
CREATE INDEX tenant_deletions_purge_idx ON tenant_deletions (purge_at) WHERE state = 'destroyed' AND backups_deleted_at IS NULL;
