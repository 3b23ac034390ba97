-- Accounts hardening (SEC-2).
-- A full sign-in no longer deletes the account's failed attempts: those rows also feed the per-IP
-- count, so deleting them let an attacker with the password reset both counts at will. The rows
-- are marked instead; the account count ignores marked rows, the IP count does not.
ALTER TABLE sign_in_failures ADD COLUMN cleared_at timestamptz;
