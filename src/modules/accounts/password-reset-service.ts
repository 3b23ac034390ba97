/**
 * Password reset by e-mail: ask for a link, then set a new password with the mailed one-time token.
 *
 * Asking never reveals whether an address has an account, not even by timing. The request is
 * answered 202 before anything about the address is looked up; the lookup, the token and the mail
 * happen after the answer (`setImmediate`), errors going to the log. We chose this over giving
 * unknown addresses dummy work of the same shape: the known path writes a token, an outbox row and
 * an audit entry (hash-chained, so it waits on other writers), and is skipped beyond the hourly
 * cap; no dummy matches all of that under load, while an answer that waits for none of it cannot
 * leak any of it. The cost: a lost process loses the request (the user asks again), so the work
 * is bounded (`MAX_PENDING`) and drained on shutdown.
 */
import { badRequest, notFound } from '../../lib/errors.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import { addHours, oneTimeToken, type AccountsDeps } from './accounts-deps.ts';
import { passwordChangedMail, passwordResetMail } from './accounts-mails.ts';
import { hashPassword } from './passwords.ts';

/** Reset mails per account per hour; beyond, requests are silently dropped (no enumeration). */
const MAX_RESET_MAILS_PER_HOUR = 5;
/** Reset requests being worked on after their answer; beyond (a flood), new ones are dropped and logged. */
const MAX_PENDING = 200;

/** Where work done after the answer reports its failures. */
export interface BackgroundLog {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export function createPasswordResetService(deps: AccountsDeps & { log: BackgroundLog }) {
  const { db, clock, users, audit, mailer, log } = deps;
  const pending = new Set<Promise<void>>();

  /** The work behind a reset request, for a known address: token and mail, at most MAX_RESET_MAILS_PER_HOUR an hour. */
  const mailResetLink = async (emailInput: string, ip: string, now: Date): Promise<void> => {
    const found = await users.findUserByEmail(emailInput.toLowerCase());
    if (!found) return;
    const { token, hash } = oneTimeToken();
    await db.transaction().execute(async (trx) => {
      // Locked, so concurrent requests cannot both pass the hourly cap.
      const user = await users.lockUser(found.id, trx);
      if (!user) return;
      if ((await users.countOneTimeTokensSince(user.id, 'reset_password', addHours(now, -1), trx)) >= MAX_RESET_MAILS_PER_HOUR) return;
      await users.insertOneTimeToken({ token_hash: hash, purpose: 'reset_password', user_id: user.id, created_at: now, expires_at: new Date(now.getTime() + deps.auth.resetTtlMinutes * 60_000), used_at: null }, trx);
      await mailer.send(passwordResetMail({ baseUrl: deps.baseUrl }, { email: user.email, userId: user.id, name: user.name, locale: user.locale }, token, deps.auth.resetTtlMinutes), trx);
      await audit.record({ actorType: 'user', actorId: null, action: 'auth.password_reset_requested', subjectType: 'user', subjectId: user.id, ip }, trx);
    });
  };

  return {
    /**
     * Takes a reset request and returns at once, whatever the address: the caller answers 202
     * while the work (if the address has an account) runs after the answer.
     */
    requestPasswordReset(emailInput: string, ip: string): void {
      if (pending.size >= MAX_PENDING) {
        log.warn({ pending: pending.size }, 'password reset requests dropped: too many pending');
        return;
      }
      const now = clock.now();
      const work: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => mailResetLink(emailInput, ip, now))
        .catch((err: unknown) => log.error({ err }, 'password reset request failed'))
        .finally(() => pending.delete(work));
      pending.add(work);
    },

    /** Resolves once every reset request taken so far is done (shutdown). */
    async drain(): Promise<void> {
      while (pending.size > 0) await Promise.all([...pending]);
    },

    /** Sets a new password with a mailed one-time token; every session and API token of the user is revoked. */
    async completePasswordReset(token: string, password: string, ip: string): Promise<void> {
      const hash = sha256Hex(token);
      const invalid = () => badRequest('invalid_token', 'This reset link is invalid, expired or already used.');
      if (!(await users.isLiveOneTimeToken(hash, 'reset_password', clock.now()))) throw invalid();
      const passwordHash = await hashPassword(password);
      await db.transaction().execute(async (trx) => {
        const now = clock.now();
        const userId = await users.consumeOneTimeToken(hash, 'reset_password', now, trx);
        if (!userId) throw invalid();
        const before = await users.findUserById(userId, trx);
        if (!before) throw notFound('user_not_found');
        // The reset link proves the mailbox, so the address counts as verified.
        const user = await users.updateUser(userId, { password_hash: passwordHash, email_verified_at: before.email_verified_at ?? now, updated_at: now }, trx);
        await users.expireOneTimeTokens(userId, 'reset_password', now, trx);
        const closed = await users.revokeUserSessions(userId, now, null, trx);
        // The account may have been taken over: whatever it handed out goes too.
        const tokensRevoked = await users.revokeUserApiTokens(userId, now, trx);
        await users.clearAccountFailures(user.email, now, trx);
        await mailer.send(passwordChangedMail({ email: user.email, userId, name: user.name, locale: user.locale }), trx);
        await audit.record({ actorType: user.staff_role ? 'staff' : 'user', actorId: userId, action: 'auth.password_reset', subjectType: 'user', subjectId: userId, ip, data: { sessionsClosed: closed, tokensRevoked } }, trx);
      });
    },
  };
}

export type PasswordResetService = ReturnType<typeof createPasswordResetService>;
