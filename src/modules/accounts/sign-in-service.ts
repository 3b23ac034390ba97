/**
 * Sign-in (SEC-2): password, throttling and lock-out, TOTP second factor (mandatory for staff,
 * optional for members), sign-out. Password reset is in password-reset-service.ts.
 *
 * Throttling (sign-in-throttle.ts) counts failed attempts per account e-mail and per IP; beyond
 * the limit the answer is 429 before the password is even checked, so a locked account cannot be
 * probed. Unknown e-mails and wrong passwords give the same answer, after the same Argon2 work.
 */
import { badRequest, conflict, forbidden, unauthorized } from '../../lib/errors.ts';
import type { Executor } from '../../db/db.ts';
import { createSession, type NewSession, type Principal } from './authn.ts';
import { auditActor, requireSession, type AccountsDeps, type Actor, type RequestMeta } from './accounts-deps.ts';
import { presentUser, type UserView } from './accounts-presenters.ts';
import type { UserRow } from './accounts-repo.ts';
import { verifyDummy, verifyPassword } from './passwords.ts';
import { createSignInThrottle } from './sign-in-throttle.ts';
import { acceptTotp, newTotpSecret, otpauthUri, totpSealContext } from './totp.ts';

export type SecondFactorState = 'none' | 'required' | 'enrollment_required';

/** What a session still needs: staff without TOTP must enrol; anyone with TOTP must enter a code. */
export function secondFactorOf(user: UserRow): SecondFactorState {
  if (user.totp_enabled_at) return 'required';
  return user.staff_role ? 'enrollment_required' : 'none';
}

export function createSignInService(deps: AccountsDeps) {
  const { db, clock, users, audit, secrets } = deps;
  const throttle = createSignInThrottle(deps);

  /** Checks a TOTP code and consumes its time step (a code works once). */
  const checkTotp = async (user: UserRow, code: string, trx?: Executor): Promise<boolean> => {
    if (!user.totp_secret_sealed || !user.totp_enabled_at) return false;
    const secret = secrets.open(user.totp_secret_sealed, totpSealContext(user.id));
    const last = user.totp_last_counter === null ? null : Number(user.totp_last_counter);
    const counter = acceptTotp(secret, code, clock.now(), last);
    return counter !== null && (await users.advanceTotpCounter(user.id, counter, trx));
  };

  const requirePendingOrUser = async (principal: Principal | null) => {
    if (!principal) throw unauthorized();
    const user = await users.findUserById(principal.userId);
    if (!user) throw unauthorized();
    return user;
  };

  return {
    /** POST /sessions: opens a session, complete or waiting for the second factor. */
    async signIn(input: { email: string; password: string; code?: string | undefined }, meta: RequestMeta): Promise<{ user: UserView; session: NewSession; secondFactor: SecondFactorState }> {
      const email = input.email.toLowerCase();
      // Counted as a failure from here on, so concurrent attempts cannot overrun the limit.
      const attempt = await throttle.reserve(email, meta.ip);
      const user = await users.findUserByEmail(email);
      const passwordOk = user ? await verifyPassword(user.password_hash, input.password) : (await verifyDummy(input.password), false);
      if (!user || !passwordOk) {
        await throttle.failed(attempt, user?.id ?? null, 'password');
        throw unauthorized('invalid_credentials', 'Wrong e-mail or password.');
      }
      let secondFactor = secondFactorOf(user);
      if (secondFactor === 'required' && input.code !== undefined) {
        if (!(await checkTotp(user, input.code))) {
          await throttle.failed(attempt, user.id, 'totp');
          throw unauthorized('invalid_credentials', 'Wrong e-mail, password or code.');
        }
        secondFactor = 'none';
      }
      return db.transaction().execute(async (trx) => {
        // Only a complete sign-in ends the account's lock-out count; the password alone does not.
        if (secondFactor === 'none') await throttle.completed(attempt, trx);
        else await throttle.passed(attempt, trx);
        const session = await createSession(trx, clock, { userId: user.id, ttlHours: deps.auth.sessionTtlHours, secondFactorPending: secondFactor !== 'none', ip: meta.ip, userAgent: meta.userAgent });
        await audit.record(
          { actorType: user.staff_role ? 'staff' : 'user', actorId: user.id, action: 'auth.sign_in', subjectType: 'user', subjectId: user.id, ip: meta.ip, data: { secondFactor: secondFactor === 'none' ? (input.code ? 'totp' : 'none') : `pending:${secondFactor}` } },
          trx,
        );
        return { user: presentUser(user), session, secondFactor };
      });
    },

    /** What the current session still needs (pending sessions are allowed here). */
    async currentSession(principal: Principal | null): Promise<{ user: UserView; secondFactor: SecondFactorState }> {
      const user = await requirePendingOrUser(principal);
      return { user: presentUser(user), secondFactor: principal!.secondFactorPending ? secondFactorOf(user) : 'none' };
    },

    /** Completes a pending session with a TOTP code. */
    async completeSecondFactor(principal: Principal | null, code: string, ip: string): Promise<UserView> {
      const user = await requirePendingOrUser(principal);
      if (!principal!.secondFactorPending || !principal!.sessionId) throw conflict('second_factor_not_pending', 'This session does not wait for a second factor.');
      if (!user.totp_enabled_at) throw conflict('totp_enrollment_required', 'Set up two-factor authentication first (POST /api/v1/me/totp).');
      const attempt = await throttle.reserve(user.email, ip);
      if (!(await checkTotp(user, code))) {
        await throttle.failed(attempt, user.id, 'totp');
        throw unauthorized('invalid_code', 'The code is not valid.');
      }
      await db.transaction().execute(async (trx) => {
        await users.clearSecondFactorPending(principal!.sessionId!, trx);
        await throttle.completed(attempt, trx);
        await audit.record({ ...auditActor({ principal: principal!, ip }), action: 'auth.second_factor_passed', subjectType: 'user', subjectId: user.id }, trx);
      });
      return presentUser(user);
    },

    /** Starts (or restarts) TOTP enrolment: a new secret, stored sealed (SEC-3), not active yet. */
    async startTotpEnrollment(principal: Principal | null): Promise<{ secret: string; otpauthUri: string }> {
      const user = await requirePendingOrUser(principal);
      requireSession(principal!);
      if (user.totp_enabled_at) throw conflict('totp_already_enabled', 'Two-factor authentication is already on.');
      const secret = newTotpSecret();
      await users.updateUser(user.id, { totp_secret_sealed: secrets.seal(secret, totpSealContext(user.id)), totp_last_counter: null, updated_at: clock.now() });
      return { secret, otpauthUri: otpauthUri(secret, user.email) };
    },

    /** Confirms enrolment with a first code: TOTP is on, and a pending session becomes complete. */
    async confirmTotp(principal: Principal | null, code: string, ip: string): Promise<UserView> {
      const user = await requirePendingOrUser(principal);
      requireSession(principal!);
      if (user.totp_enabled_at) throw conflict('totp_already_enabled', 'Two-factor authentication is already on.');
      if (!user.totp_secret_sealed) throw conflict('totp_not_started', 'Start with POST /api/v1/me/totp.');
      const secret = secrets.open(user.totp_secret_sealed, totpSealContext(user.id));
      const counter = acceptTotp(secret, code, clock.now(), null);
      if (counter === null) throw badRequest('invalid_code', 'The code is not valid.');
      return db.transaction().execute(async (trx) => {
        const now = clock.now();
        const updated = await users.updateUser(user.id, { totp_enabled_at: now, totp_last_counter: counter, updated_at: now }, trx);
        if (principal!.secondFactorPending && principal!.sessionId) await users.clearSecondFactorPending(principal!.sessionId, trx);
        await audit.record({ ...auditActor({ principal: principal!, ip }), action: 'auth.totp_enabled', subjectType: 'user', subjectId: user.id }, trx);
        return presentUser(updated);
      });
    },

    /** Members may turn TOTP off with a current code; staff may not (SEC-2). */
    async disableTotp(actor: Actor, code: string): Promise<UserView> {
      requireSession(actor.principal);
      const user = await requirePendingOrUser(actor.principal);
      if (user.staff_role) throw forbidden('totp_mandatory', 'Two-factor authentication is mandatory for operator staff.');
      if (!user.totp_enabled_at) throw conflict('totp_not_enabled', 'Two-factor authentication is not on.');
      return db.transaction().execute(async (trx) => {
        if (!(await checkTotp(user, code, trx))) throw badRequest('invalid_code', 'The code is not valid.');
        const updated = await users.updateUser(user.id, { totp_secret_sealed: null, totp_enabled_at: null, totp_last_counter: null, updated_at: clock.now() }, trx);
        await audit.record({ ...auditActor(actor), action: 'auth.totp_disabled', subjectType: 'user', subjectId: user.id }, trx);
        return presentUser(updated);
      });
    },

    async signOut(principal: Principal | null): Promise<void> {
      if (principal?.sessionId) await users.revokeSession(principal.sessionId, clock.now());
    },
  };
}

export type SignInService = ReturnType<typeof createSignInService>;
