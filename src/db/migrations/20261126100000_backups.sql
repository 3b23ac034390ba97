-- Backups (BKP-1..7): each tenant's data key, its backups, and every stored copy of every part.

-- One data key per tenant, wrapped (sealed) by the master key. Crypto-shredding (BKP-7) clears
-- wrapped_key and deletes the key escrow objects: every copy in every location becomes unreadable.
CREATE TABLE backup_keys (
  tenant_id uuid PRIMARY KEY REFERENCES tenants (id),
  key_id uuid NOT NULL UNIQUE,
  wrapped_key text,
  created_at timestamptz NOT NULL,
  shredded_at timestamptz,
  CONSTRAINT backup_keys_shredded CHECK ((wrapped_key IS NULL) = (shredded_at IS NOT NULL))
);

-- A full backup of one tenant (its database and its files). `running` while it is being taken
-- (leased by one worker); `complete` only once every part is stored AND read back with a matching
-- SHA-256 in every location; `incomplete` when some copy is missing (a location was unreachable:
-- repaired later by copying from a good location); `failed` when nothing usable was made.
-- Only complete backups are shown to customers or chosen by retention.
CREATE TABLE backups (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  tenant_database_id uuid NOT NULL REFERENCES tenant_databases (id),
  key_id uuid NOT NULL,
  trigger text NOT NULL CHECK (trigger IN ('scheduled', 'on_demand', 'pre_upgrade', 'pre_restore')),
  state text NOT NULL CHECK (state IN ('running', 'complete', 'incomplete', 'failed', 'pruned')),
  started_at timestamptz NOT NULL,
  -- The snapshot time: every table and file of the backup is as of this instant.
  taken_at timestamptz,
  completed_at timestamptz,
  worker_id text,
  lease_until timestamptz,
  size_bytes bigint,
  -- The manifest (tables with row counts and checksums, parts with sizes and SHA-256), also stored encrypted beside the parts.
  manifest jsonb,
  error text CHECK (length(error) <= 1000),
  attempts int NOT NULL DEFAULT 1,
  -- Verification (BKP-4): a restore into a scratch database compared with the manifest.
  verification text NOT NULL DEFAULT 'pending' CHECK (verification IN ('pending', 'running', 'verified', 'failed')),
  verification_lease_until timestamptz,
  verified_at timestamptz,
  verification_error text CHECK (length(verification_error) <= 1000),
  -- The objects cannot be deleted before this date (write-once storage, BKP-6).
  retain_until timestamptz NOT NULL,
  pruned_at timestamptz,
  requested_by text,
  CONSTRAINT backups_complete_has_manifest CHECK (state NOT IN ('complete', 'pruned') OR (manifest IS NOT NULL AND taken_at IS NOT NULL AND completed_at IS NOT NULL))
);
-- One backup at a time per tenant: the insert of the `running` row is the claim.
CREATE UNIQUE INDEX backups_one_running_idx ON backups (tenant_id) WHERE state = 'running';
CREATE INDEX backups_tenant_idx ON backups (tenant_id, started_at DESC);
CREATE INDEX backups_verification_idx ON backups (completed_at) WHERE state = 'complete' AND verification IN ('pending', 'running');
CREATE INDEX backups_lease_idx ON backups (lease_until) WHERE state = 'running';

-- Every copy of every part in every location, with its SHA-256 as read back.
CREATE TABLE backup_copies (
  backup_id uuid NOT NULL REFERENCES backups (id),
  location text NOT NULL CHECK (location ~ '^[a-z0-9-]{1,40}$'),
  part text NOT NULL CHECK (part IN ('manifest', 'database', 'files')),
  object_key text NOT NULL,
  size_bytes bigint NOT NULL,
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  state text NOT NULL CHECK (state IN ('checked', 'corrupt', 'deleted')),
  checked_at timestamptz NOT NULL,
  PRIMARY KEY (backup_id, location, part)
);

-- Restores (BKP-5): into a new tenant, or in place (the tenant switches to the restored database
-- in one transaction, after a safety backup). The target database is claimed before any data is
-- written into it; a restore that dies leaves its target to be dropped, never a half tenant.
CREATE TABLE backup_restores (
  id uuid PRIMARY KEY,
  backup_id uuid NOT NULL REFERENCES backups (id),
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  mode text NOT NULL CHECK (mode IN ('new', 'in-place')),
  state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
  target_database_id uuid REFERENCES tenant_databases (id),
  safety_backup_id uuid REFERENCES backups (id),
  result_tenant_id uuid REFERENCES tenants (id),
  worker_id text NOT NULL,
  lease_until timestamptz NOT NULL,
  requested_by text,
  started_at timestamptz NOT NULL,
  finished_at timestamptz,
  error text CHECK (length(error) <= 1000)
);
CREATE UNIQUE INDEX backup_restores_one_running_idx ON backup_restores (tenant_id) WHERE state = 'running';
