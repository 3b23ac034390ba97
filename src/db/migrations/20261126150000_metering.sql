-- Metering (MET-1, MET-2, MET-3): hourly samples per tenant, daily aggregates, and the allowance
-- warnings already sent (one per tenant, month, allowance and threshold).

CREATE TABLE usage_samples (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  -- The hour sampled (UTC, truncated): one sample per tenant per hour, whichever node takes it.
  sampled_at timestamptz NOT NULL,
  tenant_database_id uuid NOT NULL,
  database_bytes bigint NOT NULL CHECK (database_bytes >= 0),
  storage_bytes bigint NOT NULL CHECK (storage_bytes >= 0),
  -- pg_stat_database.active_time (ms) as read, and its stats_reset: the next sample's delta.
  db_active_ms double precision NOT NULL CHECK (db_active_ms >= 0),
  db_stats_reset timestamptz,
  -- Database time since the previous sample (ms), counter resets and restarts handled.
  db_time_ms double precision NOT NULL CHECK (db_time_ms >= 0),
  PRIMARY KEY (tenant_id, sampled_at)
);

CREATE TABLE usage_days (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  -- Paris day.
  day date NOT NULL,
  db_time_ms double precision NOT NULL DEFAULT 0,
  peak_database_bytes bigint NOT NULL DEFAULT 0,
  peak_storage_bytes bigint NOT NULL DEFAULT 0,
  samples int NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant_id, day)
);

CREATE TABLE usage_alerts (
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  month text NOT NULL CHECK (month ~ '^\d{4}-\d{2}$'),
  allowance text NOT NULL CHECK (allowance IN ('cpu', 'database', 'storage')),
  threshold int NOT NULL CHECK (threshold IN (80, 100)),
  sent_at timestamptz NOT NULL,
  PRIMARY KEY (tenant_id, month, allowance, threshold)
);
