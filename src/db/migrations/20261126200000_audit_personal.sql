-- ACC-5 / SEC-4: the personal data of an audit entry (the IP address, an e-mail address) lives
-- beside the append-only chain, which keeps only a salted SHA-256 of it (`personal_digest`):
-- erasing it (account deletion; the retention rule `audit_personal_data`) leaves every hash of the
-- chain verifiable, and a changed IP or address still shows as an altered entry.
-- Entries written before this migration keep their IP inline (they cannot change).
ALTER TABLE audit_log ADD COLUMN personal_digest text;

CREATE TABLE audit_personal (
  -- The entry's seq (no foreign key: it would answer a TRUNCATE of audit_log before the
  -- append-only trigger does).
  seq bigint PRIMARY KEY,
  at timestamptz NOT NULL,
  -- The user the data is about (the acting user, or the user the entry is about), for erasure.
  person_id text,
  salt text NOT NULL,
  ip text,
  data jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_personal_person_idx ON audit_personal (person_id);
CREATE INDEX audit_personal_email_idx ON audit_personal ((lower(data ->> 'email')));
CREATE INDEX audit_personal_at_idx ON audit_personal (at);
