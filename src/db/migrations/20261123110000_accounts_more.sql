-- Accounts, second step.
-- TOTP replay protection: the time step of the last accepted code; a code of that step or an
-- earlier one is refused, so a code seen over a shoulder cannot be used twice.
ALTER TABLE users ADD COLUMN totp_last_counter bigint;

-- At most one pending invitation per customer and e-mail; a new invitation revokes the old one.
CREATE UNIQUE INDEX invitations_pending_key ON invitations (customer_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Sign-in failures older than the window are useless: purge them by time.
CREATE INDEX sign_in_failures_at_idx ON sign_in_failures (at);
