-- Workspace schema, version 1: the records of a tenant's workspace (APP-1).
-- Applied inside the tenant's own database, as the tenant's own role, in one transaction.
-- Timestamps have no default: the application passes its clock's `now` (time is explicit).
-- Every column that holds personal data is declared, with its category, in ../personal-data.ts.

CREATE TABLE workspace_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  default_currency text NOT NULL DEFAULT 'EUR' CHECK (default_currency ~ '^[A-Z]{3}$'),
  payment_terms_days int NOT NULL DEFAULT 30 CHECK (payment_terms_days BETWEEN 0 AND 365),
  reminder_locale text NOT NULL DEFAULT 'fr' CHECK (reminder_locale IN ('fr', 'en')),
  reminder_sender_name text CHECK (length(reminder_sender_name) <= 100),
  updated_at timestamptz
);
INSERT INTO workspace_settings DEFAULT VALUES;

CREATE TABLE companies (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- SIREN (France) or the company's registration id elsewhere.
  registration_id text CHECK (length(registration_id) <= 50),
  vat_number text CHECK (length(vat_number) <= 20),
  address_line1 text CHECK (length(address_line1) <= 200),
  address_line2 text CHECK (length(address_line2) <= 200),
  postal_code text CHECK (length(postal_code) <= 20),
  city text CHECK (length(city) <= 100),
  country text CHECK (country ~ '^[A-Z]{2}$'),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX companies_name_idx ON companies (name, id);
CREATE INDEX companies_created_idx ON companies (created_at, id);

CREATE TABLE contacts (
  id uuid PRIMARY KEY,
  company_id uuid REFERENCES companies (id) ON DELETE SET NULL,
  title text CHECK (title IN ('mr', 'mrs', 'ms', 'mx', 'dr')),
  first_name text CHECK (length(first_name) <= 100),
  last_name text NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100),
  email text CHECK (length(email) <= 254),
  phone text CHECK (length(phone) <= 30),
  fax text CHECK (length(fax) <= 30),
  position text CHECK (length(position) <= 100),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX contacts_company_idx ON contacts (company_id);
CREATE INDEX contacts_last_name_idx ON contacts (last_name, id);
CREATE INDEX contacts_created_idx ON contacts (created_at, id);

CREATE TABLE employees (
  id uuid PRIMARY KEY,
  first_name text NOT NULL CHECK (length(first_name) BETWEEN 1 AND 100),
  last_name text NOT NULL CHECK (length(last_name) BETWEEN 1 AND 100),
  email text CHECK (length(email) <= 254),
  phone text CHECK (length(phone) <= 30),
  job_title text CHECK (length(job_title) <= 100),
  hire_date date,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX employees_last_name_idx ON employees (last_name, id);
CREATE INDEX employees_created_idx ON employees (created_at, id);

-- Invoices the tenant is owed. `paid_cents` and `status` follow the payments (trigger below), so
-- an invoice can never be paid beyond its amount, whatever the code path.
CREATE TABLE invoices (
  id uuid PRIMARY KEY,
  company_id uuid NOT NULL REFERENCES companies (id) ON DELETE RESTRICT,
  number text NOT NULL UNIQUE CHECK (length(number) BETWEEN 1 AND 50),
  issue_date date NOT NULL,
  due_date date NOT NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents > 0 AND amount_cents <= 100000000000),
  currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
  status text NOT NULL CHECK (status IN ('open', 'paid', 'cancelled')),
  paid_cents bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT invoices_due_after_issue CHECK (due_date >= issue_date),
  CONSTRAINT invoices_not_overpaid CHECK (paid_cents >= 0 AND paid_cents <= amount_cents)
);
CREATE INDEX invoices_company_idx ON invoices (company_id, due_date);
CREATE INDEX invoices_issue_idx ON invoices (issue_date, id);
CREATE INDEX invoices_due_idx ON invoices (due_date, id);
CREATE INDEX invoices_created_idx ON invoices (created_at, id);

CREATE TABLE payments (
  id uuid PRIMARY KEY,
  invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  paid_on date NOT NULL,
  amount_cents bigint NOT NULL CHECK (amount_cents > 0 AND amount_cents <= 100000000000),
  reference text CHECK (length(reference) <= 100),
  created_at timestamptz NOT NULL
);
CREATE INDEX payments_invoice_idx ON payments (invoice_id, paid_on);

-- Keeps invoices.paid_cents = the sum of its payments (the status follows, trigger below).
-- An overpayment violates invoices_not_overpaid.
CREATE FUNCTION havre_sync_invoice_paid() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  target uuid;
BEGIN
  FOR target IN SELECT DISTINCT unnest(ARRAY[
      CASE WHEN TG_OP IN ('INSERT', 'UPDATE') THEN NEW.invoice_id END,
      CASE WHEN TG_OP IN ('DELETE', 'UPDATE') THEN OLD.invoice_id END]) LOOP
    CONTINUE WHEN target IS NULL;
    UPDATE invoices i
       SET paid_cents = s.total
      FROM (SELECT coalesce(sum(amount_cents), 0) AS total FROM payments WHERE invoice_id = target) s
     WHERE i.id = target;
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER payments_sync_invoice AFTER INSERT OR UPDATE OR DELETE ON payments
  FOR EACH ROW EXECUTE FUNCTION havre_sync_invoice_paid();

-- 'paid' is derived, never set: open/paid follow paid_cents vs amount_cents (a paid invoice whose
-- amount grows is open again); only 'cancelled' is a choice, and setting 'open' un-cancels.
CREATE FUNCTION havre_invoice_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status <> 'cancelled' THEN
    NEW.status := CASE WHEN NEW.paid_cents >= NEW.amount_cents THEN 'paid' ELSE 'open' END;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER invoices_status BEFORE INSERT OR UPDATE OF amount_cents, status, paid_cents ON invoices
  FOR EACH ROW EXECUTE FUNCTION havre_invoice_status();

-- A note is attached to exactly one record; it goes with it.
CREATE TABLE notes (
  id uuid PRIMARY KEY,
  company_id uuid REFERENCES companies (id) ON DELETE CASCADE,
  contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE,
  employee_id uuid REFERENCES employees (id) ON DELETE CASCADE,
  invoice_id uuid REFERENCES invoices (id) ON DELETE CASCADE,
  body text NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
  -- The Havre user (member) who wrote it: an id, the name lives in the control plane.
  author_user_id uuid,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  CONSTRAINT notes_one_subject CHECK (num_nonnulls(company_id, contact_id, employee_id, invoice_id) = 1)
);
CREATE INDEX notes_company_idx ON notes (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX notes_contact_idx ON notes (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX notes_employee_idx ON notes (employee_id) WHERE employee_id IS NOT NULL;
CREATE INDEX notes_invoice_idx ON notes (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX notes_created_idx ON notes (created_at, id);
