-- Rollouts of the workspace schema to every tenant database (TEN-6) and security releases (SEC-5).

-- One row per workspace schema version that was rolled out. `released_at` starts the SEC-5 clock
-- (5 Paris business days); `security` can be raised, never lowered (enforced by the service and
-- by the trigger below).
CREATE TABLE workspace_releases (
  version int PRIMARY KEY CHECK (version >= 1),
  released_at timestamptz NOT NULL,
  security boolean NOT NULL DEFAULT false,
  -- When the release was first marked as a security fix.
  security_marked_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT workspace_releases_security_marked CHECK (security = (security_marked_at IS NOT NULL))
);

CREATE FUNCTION workspace_releases_security_kept() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.security AND NOT NEW.security THEN
    RAISE EXCEPTION 'a security release stays a security release (version %)', OLD.version;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER workspace_releases_security_kept BEFORE UPDATE ON workspace_releases
  FOR EACH ROW EXECUTE FUNCTION workspace_releases_security_kept();

-- A customer's written request not to receive a security release (yet): recorded by staff, per
-- tenant and release version. Tenants with one in force are skipped by security rollouts.
CREATE TABLE security_deferrals (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  release_version int NOT NULL CHECK (release_version >= 1),
  -- Reference or summary of the written request (e.g. "letter of 2026-11-20, ticket 4411").
  reference text NOT NULL CHECK (length(reference) BETWEEN 1 AND 500),
  -- Last Paris day of the deferral (null: until further notice).
  until date,
  recorded_by_type text NOT NULL CHECK (recorded_by_type IN ('user', 'staff', 'system', 'cli')),
  recorded_by_id text,
  recorded_at timestamptz NOT NULL,
  CONSTRAINT security_deferrals_one_per_release UNIQUE (tenant_id, release_version)
);

CREATE TABLE rollouts (
  id uuid PRIMARY KEY,
  target_version int NOT NULL REFERENCES workspace_releases (version),
  state text NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
  -- The release's security flag when the rollout was created (deferrals are honoured if set).
  security boolean NOT NULL,
  batch_size int NOT NULL CHECK (batch_size BETWEEN 1 AND 1000),
  concurrency int NOT NULL CHECK (concurrency BETWEEN 1 AND 64),
  max_attempts int NOT NULL CHECK (max_attempts BETWEEN 1 AND 10),
  -- Maintenance notices queued at creation, and the earliest start of the tenants they cover.
  notices_sent int NOT NULL DEFAULT 0 CHECK (notices_sent >= 0),
  notice_until timestamptz,
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'staff', 'system', 'cli')),
  actor_id text,
  created_at timestamptz NOT NULL,
  finished_at timestamptz,
  CONSTRAINT rollouts_finished_when_done CHECK ((state = 'running') = (finished_at IS NULL))
);
-- One unfinished rollout per target version at a time.
CREATE UNIQUE INDEX rollouts_one_running_per_target ON rollouts (target_version) WHERE state = 'running';
CREATE INDEX rollouts_created_idx ON rollouts (created_at DESC, id);

-- One row per tenant database below the target when the rollout was created.
CREATE TABLE rollout_items (
  rollout_id uuid NOT NULL REFERENCES rollouts (id),
  tenant_database_id uuid NOT NULL REFERENCES tenant_databases (id),
  -- Deterministic order: warm-pool databases first (they serve nobody), then by creation.
  position int NOT NULL CHECK (position >= 0),
  state text NOT NULL CHECK (state IN ('pending', 'running', 'done', 'failed', 'deferred', 'skipped')),
  from_version int NOT NULL CHECK (from_version >= 0),
  to_version int NOT NULL CHECK (to_version >= 1),
  attempts int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  -- The last error, without secrets, truncated.
  last_error text CHECK (length(last_error) <= 1000),
  -- Maintenance notice period: not upgraded before this instant.
  not_before timestamptz,
  -- Back-off between attempts.
  next_attempt_at timestamptz,
  -- Lease of the worker running it: past `leased_until` (a killed worker), another may take it.
  leased_until timestamptz,
  worker_id text CHECK (length(worker_id) <= 200),
  deferral_id uuid REFERENCES security_deferrals (id),
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (rollout_id, tenant_database_id),
  CONSTRAINT rollout_items_position UNIQUE (rollout_id, position),
  CONSTRAINT rollout_items_leased_when_running CHECK (state <> 'running' OR (leased_until IS NOT NULL AND worker_id IS NOT NULL))
);
CREATE INDEX rollout_items_open_idx ON rollout_items (rollout_id, position) WHERE state IN ('pending', 'running');
CREATE INDEX rollout_items_database_idx ON rollout_items (tenant_database_id, to_version);
