-- An optional idempotency key on outbox messages: a sender that may retry after a crash (e.g. a
-- payment reminder completed by another request, whose first attempt may or may not have queued
-- its mail) passes a deterministic key, and the outbox holds at most one message per key.
ALTER TABLE mail_outbox ADD COLUMN dedupe_key text CHECK (length(dedupe_key) <= 200);
CREATE UNIQUE INDEX mail_outbox_dedupe_idx ON mail_outbox (dedupe_key) WHERE dedupe_key IS NOT NULL;
