/**
 * Sign-in throttling (SEC-2): failed attempts are counted in the database (every API node sees the
 * same counts) per account e-mail and per IP over a sliding window.
 *
 * An attempt is *reserved* before the password or code is checked: in one short transaction,
 * serialised per account and per IP by advisory locks, the counts are read and, below the limits,
 * a failure row is written at once. The slow check (Argon2) runs after that transaction, holding
 * no lock and no connection. So N concurrent attempts can never check more than the limit: each
 * one sees the rows of those before it. When the attempt turns out right, its row is deleted
 * (it was not a failure); when it fails, the row simply stays.
 *
 * A full sign-in (second factor passed or not required) marks the account's earlier failures as
 * cleared. It never deletes them: they still count for their IP. A password-only success while a
 * second factor is due clears nothing, so wrong TOTP codes add up across password sign-ins.
 */
import { sql } from 'kysely';
import type { Executor } from '../../db/db.ts';
import { tooManyRequests } from '../../lib/errors.ts';
import type { AccountsDeps } from './accounts-deps.ts';

/** First key of the advisory locks taken here (the second is a hash of the account or IP). */
const LOCK_NAMESPACE = 0x53_49_47_4e; // "SIGN"

/** A reserved attempt: counted as a failure until `passed` or `completed` says otherwise. */
export interface SignInAttempt {
  failureId: string;
  email: string;
  ip: string;
}

export type FailureReason = 'password' | 'totp';

export function createSignInThrottle(deps: Pick<AccountsDeps, 'db' | 'clock' | 'users' | 'audit' | 'auth'>) {
  const { db, clock, users, audit } = deps;
  const limits = deps.auth.signIn;
  const windowMs = limits.windowMinutes * 60_000;

  const lock = (trx: Executor, key: string) => sql`SELECT pg_advisory_xact_lock(${LOCK_NAMESPACE}::int, hashtext(${key}))`.execute(trx);

  return {
    /**
     * Reserves one attempt for `email` from `ip`, or throws 429 (with Retry-After) when the account
     * or the IP has too many recent failures: then nothing is checked and nothing is recorded.
     */
    async reserve(email: string, ip: string): Promise<SignInAttempt> {
      return db.transaction().execute(async (trx) => {
        // Always the account first, then the IP: one order, so no deadlock.
        await lock(trx, `email:${email}`);
        await lock(trx, `ip:${ip}`);
        const now = clock.now();
        const since = new Date(now.getTime() - windowMs);
        const checks = [
          ['email', email, limits.maxFailuresPerAccount],
          ['ip', ip, limits.maxFailuresPerIp],
        ] as const;
        for (const [column, value, max] of checks) {
          const failures = await users.countFailures(column, value, since, trx);
          if (failures.count >= max) {
            const retryMs = (failures.oldest?.getTime() ?? now.getTime()) + windowMs - now.getTime();
            throw tooManyRequests('too_many_attempts', 'Too many failed sign-in attempts. Try again later.', Math.max(1, Math.ceil(retryMs / 1000)));
          }
        }
        const failureId = await users.recordFailure(email, ip, now, trx);
        return { failureId, email, ip };
      });
    },

    /** The attempt failed: its row stays counted; the failure is audited (never the password). */
    async failed(attempt: SignInAttempt, userId: string | null, reason: FailureReason): Promise<void> {
      await db.transaction().execute(async (trx) => {
        // (Old failure rows are purged by the accounts background job, not on this hot path.)
        await audit.record({ actorType: 'user', actorId: userId, action: 'auth.sign_in_failed', subjectType: 'user', subjectId: userId, ip: attempt.ip, data: { email: attempt.email, reason } }, trx);
      });
    },

    /** The password was right but a second factor is still due: not a failure, and nothing is cleared. */
    async passed(attempt: SignInAttempt, trx: Executor): Promise<void> {
      await users.deleteFailure(attempt.failureId, trx);
    },

    /** Fully signed in: not a failure, and the account's earlier failures stop counting (not the IP's). */
    async completed(attempt: SignInAttempt, trx: Executor): Promise<void> {
      await users.deleteFailure(attempt.failureId, trx);
      await users.clearAccountFailures(attempt.email, clock.now(), trx);
    },
  };
}

export type SignInThrottle = ReturnType<typeof createSignInThrottle>;
