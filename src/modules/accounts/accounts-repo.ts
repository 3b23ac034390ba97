/**
 * SQL of the accounts module: users, sessions, API tokens, one-time tokens and sign-in failures.
 * (Customers, memberships and invitations are in customers-repo.ts.) Every method takes an
 * optional executor so callers can run it inside their transaction.
 */
import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { ApiTokensTable, OneTimeTokensTable, UsersTable } from './accounts-tables.ts';

export type UserRow = Selectable<UsersTable>;
export type ApiTokenRow = Selectable<ApiTokensTable>;
export type OneTimePurpose = OneTimeTokensTable['purpose'];

export interface FailureCount {
  count: number;
  oldest: Date | null;
}

export function createAccountsRepo(db: Db) {
  return {
    findUserByEmail(email: string, trx: Executor = db): Promise<UserRow | undefined> {
      return trx.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
    },

    findUserById(id: string, trx: Executor = db): Promise<UserRow | undefined> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return Promise.resolve(undefined);
      return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** The user, locked for the rest of the transaction (serialises per-user counts such as reset mails). */
    lockUser(id: string, trx: Executor): Promise<UserRow | undefined> {
      return trx.selectFrom('users').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    },

    insertUser(values: Insertable<UsersTable>, trx: Executor = db): Promise<UserRow> {
      return trx.insertInto('users').values(values).returningAll().executeTakeFirstOrThrow();
    },

    updateUser(id: string, patch: Updateable<UsersTable>, trx: Executor = db): Promise<UserRow> {
      return trx.updateTable('users').set(patch).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    },

    /** Compare-and-set of the TOTP step: false when another request used this step first. */
    async advanceTotpCounter(userId: string, counter: number, trx: Executor = db): Promise<boolean> {
      const res = await trx
        .updateTable('users')
        .set({ totp_last_counter: counter })
        .where('id', '=', userId)
        .where((eb) => eb.or([eb('totp_last_counter', 'is', null), eb('totp_last_counter', '<', String(counter) as never)]))
        .executeTakeFirst();
      return res.numUpdatedRows > 0n;
    },

    listStaff(trx: Executor = db): Promise<UserRow[]> {
      return trx.selectFrom('users').selectAll().where('staff_role', 'is not', null).orderBy('created_at').execute();
    },

    async anyStaff(trx: Executor = db): Promise<boolean> {
      const row = await trx.selectFrom('users').select('id').where('staff_role', 'is not', null).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    // Sessions (opened by authn.createSession).
    async revokeSession(sessionId: string, now: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('sessions').set({ revoked_at: now }).where('id', '=', sessionId).where('revoked_at', 'is', null).execute();
    },

    /** Revokes every live session of a user, except `keepSessionId` when given. Returns how many. */
    async revokeUserSessions(userId: string, now: Date, keepSessionId: string | null, trx: Executor = db): Promise<number> {
      let q = trx.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null);
      if (keepSessionId) q = q.where('id', '!=', keepSessionId);
      const res = await q.executeTakeFirst();
      return Number(res.numUpdatedRows);
    },

    async clearSecondFactorPending(sessionId: string, trx: Executor = db): Promise<void> {
      await trx.updateTable('sessions').set({ second_factor_pending: false }).where('id', '=', sessionId).execute();
    },

    // API tokens.
    insertApiToken(values: Insertable<ApiTokensTable>, trx: Executor = db): Promise<ApiTokenRow> {
      return trx.insertInto('api_tokens').values(values).returningAll().executeTakeFirstOrThrow();
    },

    listApiTokens(userId: string, trx: Executor = db): Promise<ApiTokenRow[]> {
      return trx.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('created_at').execute();
    },

    /** Revokes one of the user's live tokens; undefined when there is no such token. */
    revokeApiToken(userId: string, id: string, now: Date, trx: Executor = db): Promise<ApiTokenRow | undefined> {
      if (!/^[0-9a-f-]{36}$/i.test(id)) return Promise.resolve(undefined);
      return trx
        .updateTable('api_tokens')
        .set({ revoked_at: now })
        .where('id', '=', id)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
    },

    /** Revokes every live API token of a user (password reset or change). Returns how many. */
    async revokeUserApiTokens(userId: string, now: Date, trx: Executor = db): Promise<number> {
      const res = await trx.updateTable('api_tokens').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
      return Number(res.numUpdatedRows);
    },

    // One-time tokens (e-mail verification, password reset): stored as their SHA-256 only.
    async insertOneTimeToken(values: Insertable<OneTimeTokensTable>, trx: Executor = db): Promise<void> {
      await trx.insertInto('one_time_tokens').values(values).execute();
    },

    /** Uses a token once (compare-and-set): the user id, or undefined when unknown, used or expired. */
    async consumeOneTimeToken(tokenHash: string, purpose: OneTimePurpose, now: Date, trx: Executor = db): Promise<string | undefined> {
      const row = await trx
        .updateTable('one_time_tokens')
        .set({ used_at: now })
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .returning('user_id')
        .executeTakeFirst();
      return row?.user_id;
    },

    /** Whether a token is live, without using it (to avoid hashing a password for a dead link). */
    async isLiveOneTimeToken(tokenHash: string, purpose: OneTimePurpose, now: Date, trx: Executor = db): Promise<boolean> {
      const row = await trx
        .selectFrom('one_time_tokens')
        .select('user_id')
        .where('token_hash', '=', tokenHash)
        .where('purpose', '=', purpose)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return row !== undefined;
    },

    /** Marks every unused token of that purpose as used (e.g. older reset links after a reset). */
    async expireOneTimeTokens(userId: string, purpose: OneTimePurpose, now: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('one_time_tokens').set({ used_at: now }).where('user_id', '=', userId).where('purpose', '=', purpose).where('used_at', 'is', null).execute();
    },

    async countOneTimeTokensSince(userId: string, purpose: OneTimePurpose, since: Date, trx: Executor = db): Promise<number> {
      const row = await trx
        .selectFrom('one_time_tokens')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('user_id', '=', userId)
        .where('purpose', '=', purpose)
        .where('created_at', '>', since)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    // Sign-in failures: counted per e-mail and per IP over a sliding window. The account count
    // skips rows cleared by a full sign-in; the IP count keeps them (SEC-2).
    async countFailures(column: 'email' | 'ip', value: string, since: Date, trx: Executor = db): Promise<FailureCount> {
      let q = trx
        .selectFrom('sign_in_failures')
        .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.min('at').as('oldest')])
        .where(column, '=', value)
        .where('at', '>', since);
      if (column === 'email') q = q.where('cleared_at', 'is', null);
      const row = await q.executeTakeFirstOrThrow();
      return { count: Number(row.n), oldest: row.oldest ? new Date(row.oldest as Date) : null };
    },

    /** Records an attempt as failed (sign-in reserves the row before checking); returns its id. */
    async recordFailure(email: string, ip: string, now: Date, trx: Executor = db): Promise<string> {
      const row = await trx.insertInto('sign_in_failures').values({ email, ip, at: now }).returning('id').executeTakeFirstOrThrow();
      return String(row.id);
    },

    /** Forgets one reserved attempt that turned out not to be a failure. */
    async deleteFailure(id: string, trx: Executor = db): Promise<void> {
      await trx.deleteFrom('sign_in_failures').where('id', '=', id).execute();
    },

    /**
     * After a full sign-in (or a password reset) the account's failures no longer count. The rows
     * are marked, not deleted: they still count for their IP.
     */
    async clearAccountFailures(email: string, now: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('sign_in_failures').set({ cleared_at: now }).where('email', '=', email).where('cleared_at', 'is', null).execute();
    },

    async purgeFailuresBefore(before: Date, trx: Executor = db): Promise<void> {
      await trx.deleteFrom('sign_in_failures').where('at', '<', before).execute();
    },
  };
}

export type AccountsRepo = ReturnType<typeof createAccountsRepo>;
