-- Mail delivery with back-off, and no SMTP conversation inside a database transaction:
-- a worker claims a message (status 'sending', locked until a deadline) in one short transaction,
-- talks to the SMTP server with no transaction open, then records the outcome. A worker that
-- dies mid-send leaves the claim to expire; the message is then sent again (at-least-once).
ALTER TABLE mail_outbox ADD COLUMN next_attempt_at timestamptz;
ALTER TABLE mail_outbox ADD COLUMN locked_until timestamptz;
UPDATE mail_outbox SET next_attempt_at = created_at WHERE status = 'pending';
ALTER TABLE mail_outbox DROP CONSTRAINT mail_outbox_status_check;
ALTER TABLE mail_outbox ADD CONSTRAINT mail_outbox_status_check CHECK (status IN ('stored', 'pending', 'sending', 'sent', 'failed'));
DROP INDEX mail_outbox_pending_idx;
CREATE INDEX mail_outbox_due_idx ON mail_outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
