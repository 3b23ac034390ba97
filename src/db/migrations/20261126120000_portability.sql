-- Portability (EXP-1..3): exports of a whole tenant, each built server-side into one archive.
--
-- `running` while the archive is being written (leased by the node that builds it: a node that dies
-- leaves a lapsed lease, and the sweep marks the export `failed` and removes its partial file);
-- `complete` only once the archive is durably renamed to its final name; `expired` once its file
-- was removed after `expires_at`. Progress (tables done, rows written) is updated while it runs.
CREATE TABLE exports (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  -- The member who asked (no foreign key: the account may be erased later, ACC-5); null from the CLI.
  requested_by uuid,
  locale text NOT NULL CHECK (locale IN ('fr', 'en')),
  state text NOT NULL CHECK (state IN ('running', 'complete', 'failed', 'expired')),
  phase text NOT NULL DEFAULT 'starting' CHECK (length(phase) <= 40),
  tables_done int NOT NULL DEFAULT 0,
  tables_total int NOT NULL DEFAULT 0,
  rows_written bigint NOT NULL DEFAULT 0,
  rows_total bigint NOT NULL DEFAULT 0,
  size_bytes bigint,
  sha256 text CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  error text CHECK (length(error) <= 1000),
  worker_id text,
  lease_until timestamptz,
  started_at timestamptz NOT NULL,
  completed_at timestamptz,
  expires_at timestamptz,
  CONSTRAINT exports_complete_has_file CHECK (state <> 'complete' OR (size_bytes IS NOT NULL AND sha256 IS NOT NULL AND completed_at IS NOT NULL AND expires_at IS NOT NULL))
);
-- One export at a time per tenant: the insert of the `running` row is the claim.
CREATE UNIQUE INDEX exports_one_running_idx ON exports (tenant_id) WHERE state = 'running';
CREATE INDEX exports_tenant_idx ON exports (tenant_id, started_at DESC);
CREATE INDEX exports_lease_idx ON exports (lease_until) WHERE state = 'running';
CREATE INDEX exports_expiry_idx ON exports (expires_at) WHERE state = 'complete';
