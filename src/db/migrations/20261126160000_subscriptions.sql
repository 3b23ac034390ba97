-- Subscriptions (BIL-2..7, BIL-12): one per tenant once its customer picks a plan; termination
-- notices; the customers' billing identity and their choice about being cited as a reference.

ALTER TABLE customers ADD COLUMN vat_number text CHECK (length(vat_number) <= 20);
-- BIL-12: a customer may refuse to be cited as a reference.
ALTER TABLE customers ADD COLUMN refuses_reference boolean NOT NULL DEFAULT false;

CREATE TABLE subscriptions (
  id uuid PRIMARY KEY,
  tenant_id uuid NOT NULL UNIQUE REFERENCES tenants (id),
  customer_id uuid NOT NULL REFERENCES customers (id),
  plan text NOT NULL CHECK (plan ~ '^[a-z0-9-]{1,20}$'),
  -- The Paris day the paid plan starts (the first invoice is prorata from it, BIL-4).
  started_on date NOT NULL,
  -- A plan change decided for a later month (BIL-6 overuse upgrade): applied by the run of that month.
  next_plan text CHECK (next_plan ~ '^[a-z0-9-]{1,20}$'),
  next_plan_from text CHECK (next_plan_from ~ '^\d{4}-\d{2}$'),
  -- BIL-5: when the notice was received, how, and the contract's last day.
  termination_received_at timestamptz,
  termination_source text CHECK (termination_source IN ('portal', 'staff', 'price_change')),
  ends_on date,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT subscriptions_termination CHECK ((termination_received_at IS NULL) = (ends_on IS NULL)),
  CONSTRAINT subscriptions_next_plan CHECK ((next_plan IS NULL) = (next_plan_from IS NULL))
);
CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id);
