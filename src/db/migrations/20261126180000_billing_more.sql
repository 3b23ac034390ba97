-- Price changes (BIL-7): staff announce a new price of a plan at least 60 days before it applies;
-- the billing run uses the price in force for the month; customers told of it may terminate
-- without penalty until `objection_until`, their contract then ending the day before it applies.

CREATE TABLE price_changes (
  id uuid PRIMARY KEY,
  plan text NOT NULL CHECK (plan ~ '^[a-z0-9-]{1,20}$'),
  old_price_cents bigint NOT NULL CHECK (old_price_cents >= 0),
  new_price_cents bigint NOT NULL CHECK (new_price_cents >= 0),
  -- Invoices are monthly, in advance: a new price applies from the 1st of a month.
  effective_date date NOT NULL CHECK (extract(day FROM effective_date) = 1),
  announced_at timestamptz NOT NULL,
  -- Last Paris day on which a customer may terminate without penalty (announcement + 30 days).
  objection_until date NOT NULL,
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL,
  CONSTRAINT price_changes_notice CHECK (effective_date >= objection_until),
  CONSTRAINT price_changes_one_per_date UNIQUE (plan, effective_date)
);
CREATE INDEX price_changes_plan_idx ON price_changes (plan, effective_date);

-- Which price change a termination answered (source 'price_change'), for the record.
ALTER TABLE subscriptions ADD COLUMN price_change_id uuid REFERENCES price_changes (id);
