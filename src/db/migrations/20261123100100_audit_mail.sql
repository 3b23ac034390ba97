-- SEC-4: append-only, hash-chained audit log. Each entry's hash covers its content and the previous
-- entry's hash; `havre audit verify` recomputes the chain. UPDATE, DELETE and TRUNCATE are refused
-- by triggers, so even a bug in Havre cannot rewrite history (only a superuser disabling the
-- triggers can, and the chain then shows it).
CREATE TABLE audit_log (
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'staff', 'system', 'cli')),
  actor_id text,
  action text NOT NULL,
  subject_type text,
  subject_id text,
  customer_id uuid,
  ip text,
  data jsonb NOT NULL DEFAULT '{}'::jsonb,
  prev_hash text NOT NULL,
  hash text NOT NULL UNIQUE
);
CREATE INDEX audit_log_customer_idx ON audit_log (customer_id, seq);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_type, subject_id);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Every e-mail Havre sends. With no SMTP configured this is the local outbox a user reads with
-- `havre mail list|show`; with SMTP it is the delivery queue and record (status, attempts).
CREATE TABLE mail_outbox (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  to_address text NOT NULL,
  user_id uuid REFERENCES users (id) ON DELETE SET NULL,
  template text NOT NULL,
  locale text NOT NULL CHECK (locale IN ('fr', 'en')),
  subject text NOT NULL,
  body_text text NOT NULL,
  transport text NOT NULL CHECK (transport IN ('outbox', 'smtp')),
  status text NOT NULL CHECK (status IN ('stored', 'pending', 'sent', 'failed')),
  attempts int NOT NULL DEFAULT 0,
  last_error text,
  created_at timestamptz NOT NULL,
  sent_at timestamptz
);
CREATE INDEX mail_outbox_created_idx ON mail_outbox (created_at DESC);
CREATE INDEX mail_outbox_pending_idx ON mail_outbox (status) WHERE status = 'pending';
