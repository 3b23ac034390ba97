-- Billing documents (BIL-9): invoices and credit notes, numbered without gaps per seller and kind
-- at issue time, immutable once issued (enforced here, not only in the code).

-- One counter per seller and kind. Issuing takes the row lock (UPDATE … RETURNING) inside the
-- issuing transaction: concurrent issuers wait for each other, and a rolled-back issue gives its
-- number back — so numbers are sequential without gaps or duplicates.
CREATE TABLE billing_sequences (
  seller text NOT NULL CHECK (seller ~ '^[a-z0-9-]{1,40}$'),
  kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  prefix text NOT NULL CHECK (prefix ~ '^[A-Z0-9-]{1,10}$'),
  next_value bigint NOT NULL DEFAULT 1 CHECK (next_value >= 1),
  PRIMARY KEY (seller, kind)
);

CREATE TABLE billing_documents (
  id uuid PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
  seller text NOT NULL,
  state text NOT NULL CHECK (state IN ('draft', 'issued')),
  -- Assigned at issue, never before: a draft has no number.
  number text,
  sequence_value bigint,
  customer_id uuid NOT NULL REFERENCES customers (id),
  -- A credit note corrects an issued invoice.
  corrects_id uuid REFERENCES billing_documents (id),
  period_start date,
  period_end date,
  currency text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
  -- [{ "labelFr", "labelEn", "quantity", "unitCents", "amountCents" }], amounts excluding VAT.
  lines jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array'),
  net_cents bigint NOT NULL CHECK (net_cents >= 0),
  vat_rate_basis_points int NOT NULL CHECK (vat_rate_basis_points BETWEEN 0 AND 10000),
  vat_cents bigint NOT NULL CHECK (vat_cents >= 0),
  gross_cents bigint NOT NULL,
  vat_mention jsonb,
  -- Buyer and seller identity as they were when the document was made (the law asks for them as issued).
  buyer jsonb NOT NULL,
  seller_identity jsonb NOT NULL,
  issue_date date,
  due_date date,
  -- Makes a billing run idempotent: e.g. `monthly:<subscription>:<YYYY-MM>` — one document per key, ever.
  idempotency_key text UNIQUE CHECK (length(idempotency_key) <= 200),
  created_at timestamptz NOT NULL,
  issued_at timestamptz,
  CONSTRAINT billing_documents_number_when_issued CHECK ((state = 'issued') = (number IS NOT NULL AND sequence_value IS NOT NULL AND issue_date IS NOT NULL AND issued_at IS NOT NULL)),
  CONSTRAINT billing_documents_totals CHECK (gross_cents = net_cents + vat_cents),
  CONSTRAINT billing_documents_credit_note CHECK ((kind = 'credit_note') = (corrects_id IS NOT NULL)),
  CONSTRAINT billing_documents_sequence_unique UNIQUE (seller, kind, sequence_value),
  CONSTRAINT billing_documents_number_unique UNIQUE (seller, number)
);
CREATE INDEX billing_documents_customer_idx ON billing_documents (customer_id, created_at);

-- Issued documents never change and are never deleted; drafts may be edited or deleted.
CREATE FUNCTION billing_documents_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.state = 'issued' THEN
    RAISE EXCEPTION 'billing document % is issued: it cannot be changed or deleted (issue a credit note)', OLD.number
      USING ERRCODE = 'P0001';
  END IF;
  IF TG_OP = 'DELETE' THEN
    RETURN OLD;
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER billing_documents_immutable BEFORE UPDATE OR DELETE ON billing_documents
  FOR EACH ROW EXECUTE FUNCTION billing_documents_immutable();
CREATE FUNCTION billing_documents_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'billing documents cannot be truncated' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER billing_documents_no_truncate BEFORE TRUNCATE ON billing_documents
  FOR EACH STATEMENT EXECUTE FUNCTION billing_documents_no_truncate();
