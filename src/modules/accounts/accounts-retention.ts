/**
 * PRV-4: the retention categories of the accounts module, registered with the retention engine
 * (`src/modules/retention/`). Periods and switches are in `config.retention.rules`; each clock
 * matches an expression index of migration 20261126130000_retention.sql.
 *
 * Failed sign-ins used to be purged by a 10-minute loop of this module; the rule
 * `sign_in_failures` now does it once a day with evidence (rows live at most a day past the
 * period: the sliding window of the sign-in limits is minutes, so older rows only cost space).
 */
import { sql, type RawBuilder } from 'kysely';
import { deleteRule, deleteWhere, type RetentionCategory } from '../retention/retention-registry.ts';

/** Users deleted (ACC-5) before the cutoff: their leftovers go. */
const deletedBefore = (cutoff: Date) => sql`user_id IN (SELECT id FROM users WHERE deleted_at < ${cutoff})`;

/** Leftovers of deleted accounts: sessions, API tokens, one-time tokens, mails no longer in delivery. */
const deletedUserLeftovers: RetentionCategory = {
  ruleId: 'deleted_user_leftovers',
  async apply(trx, cutoff, batchSize) {
    let done = 0;
    const tables: [string, RawBuilder<unknown>][] = [
      ['sessions', deletedBefore(cutoff)],
      ['api_tokens', deletedBefore(cutoff)],
      ['one_time_tokens', deletedBefore(cutoff)],
      ['mail_outbox', sql`${deletedBefore(cutoff)} AND status IN ('sent', 'stored', 'failed')`],
    ];
    for (const [table, where] of tables) {
      if (done >= batchSize) break;
      done += await deleteWhere(trx, table, where, batchSize - done);
    }
    return done;
  },
  async oldest(db) {
    const res = await sql<{ oldest: Date | null }>`
      SELECT min(u.deleted_at) AS oldest FROM users u
      WHERE u.deleted_at IS NOT NULL AND (
        EXISTS (SELECT 1 FROM sessions s WHERE s.user_id = u.id) OR EXISTS (SELECT 1 FROM api_tokens t WHERE t.user_id = u.id)
        OR EXISTS (SELECT 1 FROM one_time_tokens o WHERE o.user_id = u.id)
        OR EXISTS (SELECT 1 FROM mail_outbox m WHERE m.user_id = u.id AND m.status IN ('sent', 'stored', 'failed')))`.execute(db);
    const v = res.rows[0]?.oldest ?? null;
    return v === null ? null : new Date(v);
  },
};

/** Every retention category of the accounts module. */
export function accountsRetentionCategories(): RetentionCategory[] {
  return [
    deleteRule('sign_in_failures', 'sign_in_failures', 'at'),
    deleteRule('sessions_ended', 'sessions', 'LEAST(expires_at, revoked_at)'),
    deleteRule('api_tokens_ended', 'api_tokens', 'LEAST(expires_at, revoked_at)'),
    deleteRule('one_time_tokens_ended', 'one_time_tokens', 'LEAST(expires_at, used_at)'),
    deleteRule('invitations_ended', 'invitations', 'LEAST(expires_at, revoked_at, accepted_at)'),
    // The personal part of audit entries (IP, e-mail; audit-service.ts), kept beside the chain.
    deleteRule('audit_personal_data', 'audit_personal', 'at'),
    deletedUserLeftovers,
  ];
}
