-- Workspace schema, version 2: the log of payment reminders (APP-2).
-- A reminder row is written ('pending') before its e-mail is queued in Havre's outbox, then marked
-- 'queued' with the outbox id: a crash between the two leaves a visible pending row that is
-- completed later, never an e-mail without its log line.

CREATE TABLE reminders (
  id uuid PRIMARY KEY,
  invoice_id uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  contact_id uuid REFERENCES contacts (id) ON DELETE SET NULL,
  -- The address and language used, as they were when the reminder was sent.
  recipient_email text NOT NULL CHECK (length(recipient_email) <= 254),
  locale text NOT NULL CHECK (locale IN ('fr', 'en')),
  status text NOT NULL CHECK (status IN ('pending', 'queued')),
  mail_id uuid,
  sent_by_user_id uuid,
  created_at timestamptz NOT NULL,
  queued_at timestamptz,
  CONSTRAINT reminders_queued_has_mail CHECK (status = 'pending' OR (mail_id IS NOT NULL AND queued_at IS NOT NULL))
);
CREATE INDEX reminders_invoice_idx ON reminders (invoice_id, created_at);
CREATE INDEX reminders_pending_idx ON reminders (created_at) WHERE status = 'pending';

-- Receivables queries read open invoices by due date.
CREATE INDEX invoices_open_due_idx ON invoices (due_date) WHERE status = 'open';
