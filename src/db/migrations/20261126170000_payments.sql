-- Payments and dunning (BIL-10, BIL-11). Issued invoices are immutable (billing_documents refuses
-- any UPDATE), so what happens to an invoice after it is issued — payments, reminders, suspension,
-- the surcharge — lives here. Only provider ids are stored: never a card number or an IBAN.

-- A customer's automatic payment method at a provider: Stripe customer + PaymentMethod (pm_…) ids,
-- or GoCardless customer + mandate (MD…) ids.
CREATE TABLE payment_methods (
  id uuid PRIMARY KEY,
  customer_id uuid NOT NULL REFERENCES customers (id),
  provider text NOT NULL CHECK (provider IN ('stripe', 'gocardless')),
  provider_customer_id text CHECK (provider_customer_id ~ '^[A-Za-z0-9_]{1,100}$'),
  provider_method_id text NOT NULL CHECK (provider_method_id ~ '^[A-Za-z0-9_]{1,100}$'),
  state text NOT NULL CHECK (state IN ('active', 'revoked')),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  UNIQUE (provider, provider_method_id)
);
CREATE INDEX payment_methods_customer_idx ON payment_methods (customer_id) WHERE state = 'active';

CREATE TABLE payments (
  id uuid PRIMARY KEY,
  invoice_id uuid NOT NULL REFERENCES billing_documents (id),
  customer_id uuid NOT NULL REFERENCES customers (id),
  provider text NOT NULL CHECK (provider IN ('bank_transfer', 'stripe', 'gocardless')),
  provider_payment_id text CHECK (provider_payment_id ~ '^[A-Za-z0-9_]{1,100}$'),
  method_id uuid REFERENCES payment_methods (id),
  -- `invoice:<id>:attempt:<n>` for provider charges (sent to the provider), `transfer:<uuid>` for bank transfers.
  idempotency_key text NOT NULL UNIQUE,
  attempt integer NOT NULL CHECK (attempt >= 1),
  amount_cents bigint NOT NULL CHECK (amount_cents > 0),
  state text NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  -- Bank transfers: the reference on the statement (checked: no card number, no IBAN).
  reference text CHECK (length(reference) <= 140),
  received_at timestamptz,
  recorded_by uuid REFERENCES users (id),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  UNIQUE (provider, provider_payment_id),
  CONSTRAINT payments_received CHECK ((state = 'succeeded') = (received_at IS NOT NULL))
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id);

-- Webhook events, one row per provider event id: a replayed event finds its row and changes nothing.
-- Only the type and the ids it names are kept, never the payload.
CREATE TABLE payment_events (
  provider text NOT NULL CHECK (provider IN ('stripe', 'gocardless')),
  event_id text NOT NULL CHECK (event_id ~ '^[A-Za-z0-9_]{1,100}$'),
  type text NOT NULL CHECK (length(type) <= 100),
  object_id text CHECK (object_id ~ '^[A-Za-z0-9_]{1,100}$'),
  outcome text NOT NULL CHECK (outcome IN ('applied', 'ignored')),
  received_at timestamptz NOT NULL,
  PRIMARY KEY (provider, event_id)
);

-- The dunning state of an issued invoice (BIL-11): paid or not, the last reminder sent, when its
-- non-payment suspended the customer's tenants, and the surcharge invoice.
CREATE TABLE invoice_dunning (
  invoice_id uuid PRIMARY KEY REFERENCES billing_documents (id),
  customer_id uuid NOT NULL REFERENCES customers (id),
  paid_at timestamptz,
  reminder_step integer NOT NULL DEFAULT 0,
  suspended_at timestamptz,
  surcharge_invoice_id uuid REFERENCES billing_documents (id),
  terminated_at timestamptz,
  updated_at timestamptz NOT NULL
);
CREATE INDEX invoice_dunning_unpaid_idx ON invoice_dunning (customer_id) WHERE paid_at IS NULL;

-- Tenants suspended for non-payment: only these are resumed when the customer pays (a tenant
-- suspended by staff for another reason stays suspended).
CREATE TABLE dunning_suspensions (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL REFERENCES tenants (id),
  customer_id uuid NOT NULL REFERENCES customers (id),
  invoice_id uuid NOT NULL REFERENCES billing_documents (id),
  suspended_at timestamptz NOT NULL,
  lifted_at timestamptz
);
CREATE UNIQUE INDEX dunning_suspensions_open_idx ON dunning_suspensions (tenant_id) WHERE lifted_at IS NULL;
CREATE INDEX dunning_suspensions_customer_idx ON dunning_suspensions (customer_id) WHERE lifted_at IS NULL;
