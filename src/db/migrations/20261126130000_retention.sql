-- Retention engine (PRV-4) and account deletion (ACC-5).

-- ACC-5: a deleted account keeps its row (its id is what the append-only audit log points at),
-- with its personal data erased; `deleted_at` starts the clock of the leftovers rule.
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
CREATE INDEX users_deleted_idx ON users (deleted_at) WHERE deleted_at IS NOT NULL;

-- PRV-4 evidence: one row per rule per run. Counts, times and ages only, never personal data.
CREATE TABLE retention_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id uuid NOT NULL,
  rule_id text NOT NULL CHECK (length(rule_id) <= 80),
  action text NOT NULL CHECK (action IN ('delete', 'anonymise')),
  -- The `now` the rule was applied at (differs from started_at in an --as-of simulation).
  as_of timestamptz NOT NULL,
  cutoff timestamptz NOT NULL,
  simulated boolean NOT NULL DEFAULT false,
  status text NOT NULL CHECK (status IN ('ok', 'failed', 'not_registered')),
  affected bigint NOT NULL DEFAULT 0,
  -- Transactions that changed rows: each at most `retention.batchSize` rows.
  batches int NOT NULL DEFAULT 0,
  -- Age, at as_of, of the oldest record still under the rule after the run (null: none left).
  oldest_remaining_seconds bigint,
  -- An error code or class, never a message that could quote data.
  error text CHECK (length(error) <= 200),
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL
);
CREATE INDEX retention_runs_rule_idx ON retention_runs (rule_id, finished_at DESC);

-- The daily claim: one row; a node runs the day's job only if it moves `last_day` forward
-- (compare-and-set), so many nodes run it once a day between them.
CREATE TABLE retention_schedule (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  last_day date NOT NULL
);

-- Indexes on each rule's clock, so a batch finds its rows without scanning the table.
CREATE INDEX sessions_ended_idx ON sessions ((LEAST(expires_at, revoked_at)));
CREATE INDEX api_tokens_ended_idx ON api_tokens ((LEAST(expires_at, revoked_at)));
CREATE INDEX one_time_tokens_ended_idx ON one_time_tokens ((LEAST(expires_at, used_at)));
CREATE INDEX invitations_ended_idx ON invitations ((LEAST(expires_at, revoked_at, accepted_at)));
CREATE INDEX mail_outbox_done_idx ON mail_outbox ((COALESCE(sent_at, created_at))) WHERE status IN ('sent', 'stored', 'failed');
CREATE INDEX mail_outbox_user_idx ON mail_outbox (user_id);
