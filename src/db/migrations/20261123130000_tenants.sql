-- Tenants (TEN-3): one per hosted workspace of a customer, placed on a tenant database of the
-- fleet (TEN-1, TEN-2), with its lifecycle state and every state change recorded.

CREATE TABLE tenants (
  id uuid PRIMARY KEY,
  -- No cascade: a tenant leaves only through its lifecycle (cancelled → destroyed), never as a
  -- side effect of deleting a customer row.
  customer_id uuid NOT NULL REFERENCES customers (id),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  region text NOT NULL CHECK (region ~ '^[a-z]{2}$'),
  state text NOT NULL CHECK (state IN ('provisioning', 'trial', 'active', 'suspended', 'cancelled', 'destroyed')),
  -- Null only while provisioning; one tenant per database, ever.
  tenant_database_id uuid UNIQUE REFERENCES tenant_databases (id),
  plan text CHECK (length(plan) <= 50),
  trial_ends_at timestamptz,
  -- Idempotency-Key of the creating request, scoped to the customer: a retried POST finds the
  -- tenant its first attempt created instead of making a second one. The fingerprint (SHA-256 of
  -- the request's parameters) lets a reused key with different parameters be refused.
  idempotency_key text CHECK (length(idempotency_key) <= 200),
  idempotency_fingerprint text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  state_changed_at timestamptz NOT NULL,
  CONSTRAINT tenants_idempotency_key UNIQUE (customer_id, idempotency_key),
  CONSTRAINT tenants_database_when_provisioned CHECK (state IN ('provisioning', 'destroyed') OR tenant_database_id IS NOT NULL)
);
CREATE INDEX tenants_customer_idx ON tenants (customer_id, created_at);
CREATE INDEX tenants_state_idx ON tenants (state, state_changed_at);

-- Every state change of a tenant (TEN-3), creation included (from_state null). Also in the audit
-- log (SEC-4); this table is the per-tenant history shown to customers and staff.
CREATE TABLE tenant_transitions (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  from_state text CHECK (from_state IN ('provisioning', 'trial', 'active', 'suspended', 'cancelled', 'destroyed')),
  to_state text NOT NULL CHECK (to_state IN ('provisioning', 'trial', 'active', 'suspended', 'cancelled', 'destroyed')),
  reason text CHECK (length(reason) <= 500),
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'staff', 'system', 'cli')),
  actor_id text,
  at timestamptz NOT NULL
);
CREATE INDEX tenant_transitions_tenant_idx ON tenant_transitions (tenant_id, id);
