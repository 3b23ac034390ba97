-- Accounts: customers (companies), users (members and operator staff), memberships, sessions,
-- API tokens, one-time tokens (e-mail verification, password reset), invitations, sign-in failures.

CREATE TABLE customers (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  country text CHECK (country ~ '^[A-Z]{2}$'),
  postal_address text CHECK (length(postal_address) <= 500),
  -- ACC-2: the designated contact person is one of the members.
  contact_user_id uuid,
  -- ACC-2: the data-protection contact receives breach and data-subject-request notices.
  dpo_name text CHECK (length(dpo_name) <= 200),
  dpo_email text CHECK (length(dpo_email) <= 320),
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL CHECK (email = lower(email) AND length(email) <= 320),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  phone text CHECK (length(phone) <= 40),
  locale text NOT NULL DEFAULT 'en' CHECK (locale IN ('fr', 'en')),
  -- SEC-1: Argon2id PHC string; never returned by any presenter.
  password_hash text NOT NULL,
  email_verified_at timestamptz,
  -- Operator staff: null for customer members.
  staff_role text CHECK (staff_role IN ('admin', 'support', 'billing')),
  -- TOTP secret sealed with the master key (SEC-3).
  totp_secret_sealed text,
  totp_enabled_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);

ALTER TABLE customers ADD CONSTRAINT customers_contact_user_fk FOREIGN KEY (contact_user_id) REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE memberships (
  customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'administrator', 'collaborator')),
  created_at timestamptz NOT NULL,
  PRIMARY KEY (customer_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE sessions (
  -- SHA-256 of the cookie value: the database never holds a usable session token.
  id text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  -- Staff who still have to pass (or enrol) TOTP get a session limited to that step.
  second_factor_pending boolean NOT NULL DEFAULT false,
  ip text,
  user_agent text,
  created_at timestamptz NOT NULL,
  last_seen_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE api_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  token_hash text NOT NULL UNIQUE,
  -- First characters of the token, to let a user recognise it in a list.
  prefix text NOT NULL,
  created_at timestamptz NOT NULL,
  last_used_at timestamptz,
  expires_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX api_tokens_user_idx ON api_tokens (user_id);

CREATE TABLE one_time_tokens (
  token_hash text PRIMARY KEY,
  purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE INDEX one_time_tokens_user_idx ON one_time_tokens (user_id, purpose);

CREATE TABLE invitations (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  customer_id uuid NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
  email text NOT NULL CHECK (email = lower(email)),
  role text NOT NULL CHECK (role IN ('owner', 'administrator', 'collaborator')),
  invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
  token_hash text NOT NULL UNIQUE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  accepted_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX invitations_customer_idx ON invitations (customer_id);

-- Failed sign-ins, counted per account and per IP over a sliding window (rate limit + lock-out).
-- In the database so that every API node sees the same counts.
CREATE TABLE sign_in_failures (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  email text NOT NULL,
  ip text NOT NULL,
  at timestamptz NOT NULL
);
CREATE INDEX sign_in_failures_email_idx ON sign_in_failures (email, at);
CREATE INDEX sign_in_failures_ip_idx ON sign_in_failures (ip, at);
