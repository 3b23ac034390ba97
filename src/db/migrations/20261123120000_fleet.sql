-- Fleet: the database servers registered per region (TEN-2) and the tenant databases on them
-- (TEN-1), including the warm pool of pre-created databases. Credentials are sealed with the
-- master key (SEC-3): the admin URL and the tenant role passwords never appear in clear here.

CREATE TABLE database_servers (
  id uuid PRIMARY KEY,
  name text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  region text NOT NULL CHECK (region ~ '^[a-z]{2}$'),
  admin_url_sealed text NOT NULL CHECK (admin_url_sealed LIKE 'v1.%'),
  -- host:port, for display; unique so that one server is not registered (and counted) twice.
  address text NOT NULL UNIQUE,
  max_tenants int NOT NULL CHECK (max_tenants > 0),
  status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'draining')),
  server_version_num int NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX database_servers_region_idx ON database_servers (region, status);

-- Lifecycle: creating (row committed before any DDL, so a crash leaves a trace the sweeper
-- cleans) → pooled (ready, in the warm pool) → assigned (handed to a tenant) → dropping → dropped.
CREATE TABLE tenant_databases (
  id uuid PRIMARY KEY,
  server_id uuid NOT NULL REFERENCES database_servers (id),
  database_name text NOT NULL CHECK (database_name ~ '^t_[0-9a-f]{24}$'),
  role_name text NOT NULL CHECK (role_name ~ '^r_[0-9a-f]{24}$'),
  role_password_sealed text NOT NULL CHECK (role_password_sealed LIKE 'v1.%'),
  state text NOT NULL CHECK (state IN ('creating', 'pooled', 'assigned', 'dropping', 'dropped')),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  assigned_at timestamptz,
  dropped_at timestamptz,
  UNIQUE (server_id, database_name),
  UNIQUE (server_id, role_name)
);
CREATE INDEX tenant_databases_server_state_idx ON tenant_databases (server_id, state);
CREATE INDEX tenant_databases_pooled_idx ON tenant_databases (server_id, created_at) WHERE state = 'pooled';
