-- Workspace schema, version 3: file attachments (APP-1). The bytes live in the tenant's own area
-- of the storage (key derived from the id); this row exists only once the file is completely
-- stored, with its size and SHA-256. A file whose row is gone (deleted, or its record deleted by
-- cascade) is an orphan that the storage sweep removes.

CREATE TABLE attachments (
  id uuid PRIMARY KEY,
  company_id uuid REFERENCES companies (id) ON DELETE CASCADE,
  contact_id uuid REFERENCES contacts (id) ON DELETE CASCADE,
  employee_id uuid REFERENCES employees (id) ON DELETE CASCADE,
  invoice_id uuid REFERENCES invoices (id) ON DELETE CASCADE,
  file_name text NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
  content_type text NOT NULL CHECK (length(content_type) BETWEEN 3 AND 100),
  size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
  sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  uploaded_by_user_id uuid,
  created_at timestamptz NOT NULL,
  CONSTRAINT attachments_at_most_one_subject CHECK (num_nonnulls(company_id, contact_id, employee_id, invoice_id) <= 1)
);
CREATE INDEX attachments_company_idx ON attachments (company_id) WHERE company_id IS NOT NULL;
CREATE INDEX attachments_contact_idx ON attachments (contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX attachments_employee_idx ON attachments (employee_id) WHERE employee_id IS NOT NULL;
CREATE INDEX attachments_invoice_idx ON attachments (invoice_id) WHERE invoice_id IS NOT NULL;
CREATE INDEX attachments_created_idx ON attachments (created_at, id);
