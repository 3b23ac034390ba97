/**
 * Identity of a member: sign-up (ACC-1), e-mail verification, own profile (ACC-3), password
 * change, API tokens. Sign-in and second factor are in sign-in-service.ts; customers, members and
 * invitations in customers-service.ts; operator staff in staff-service.ts.
 */
import { badRequest, conflict, forbidden, notFound, tooManyRequests } from '../../lib/errors.ts';
import type { Executor } from '../../db/db.ts';
import { createSession, newApiTokenValue, type NewSession } from './authn.ts';
import { addHours, auditActor, isUniqueViolation, oneTimeToken, requireSession, type AccountsDeps, type Actor, type RequestMeta } from './accounts-deps.ts';
import { passwordChangedMail, verificationMail } from './accounts-mails.ts';
import { presentApiToken, presentCustomer, presentUser, type CustomerView, type UserView } from './accounts-presenters.ts';
import type { UserRow } from './accounts-repo.ts';
import type { Locale } from './accounts-tables.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { sha256Hex } from '../../lib/crypto.ts';

export interface SignUpInput {
  name: string;
  company: string;
  email: string;
  password: string;
  phone?: string | undefined;
  postalAddress?: string | undefined;
  country?: string | undefined;
  locale: Locale;
}

export interface ProfilePatch {
  name?: string | undefined;
  phone?: string | null | undefined;
  locale?: Locale | undefined;
}

/** Verification mails a user may ask for per hour (resend). */
const MAX_VERIFICATION_MAILS_PER_HOUR = 5;

export function createIdentityService(deps: AccountsDeps) {
  const { db, clock, users, customers, audit, mailer } = deps;

  /** Creates a verification token and queues its mail, in `trx`. */
  const issueVerification = async (user: UserRow, trx: Executor) => {
    const now = clock.now();
    const { token, hash } = oneTimeToken();
    await users.insertOneTimeToken({ token_hash: hash, purpose: 'verify_email', user_id: user.id, created_at: now, expires_at: addHours(now, deps.auth.verificationTtlHours), used_at: null }, trx);
    await mailer.send(verificationMail({ baseUrl: deps.baseUrl }, { email: user.email, userId: user.id, name: user.name, locale: user.locale }, token, deps.auth.verificationTtlHours), trx);
  };

  const requireUserRow = async (userId: string, trx?: Executor) => {
    const user = await users.findUserById(userId, trx);
    if (!user) throw notFound('user_not_found');
    return user;
  };

  return {
    issueVerification,

    /**
     * ACC-1: creates the customer, its first member (owner and designated contact), a session, and
     * queues the e-mail verification — all or nothing.
     */
    async signUp(input: SignUpInput, meta: RequestMeta): Promise<{ user: UserView; customer: CustomerView; session: NewSession }> {
      const email = input.email.toLowerCase();
      if (await users.findUserByEmail(email)) throw conflict('email_taken', 'An account with this e-mail already exists.');
      // Hash before the transaction: no slow CPU work while holding locks.
      const passwordHash = await hashPassword(input.password);
      try {
        return await db.transaction().execute(async (trx) => {
          const now = clock.now();
          const user = await users.insertUser(
            { email, name: input.name, phone: input.phone ?? null, locale: input.locale, password_hash: passwordHash, email_verified_at: null, staff_role: null, totp_secret_sealed: null, totp_enabled_at: null, created_at: now, updated_at: now },
            trx,
          );
          const customer = await customers.insertCustomer(
            { name: input.company, country: input.country ?? null, postal_address: input.postalAddress ?? null, contact_user_id: user.id, dpo_name: null, dpo_email: null, created_at: now, updated_at: now },
            trx,
          );
          await customers.insertMembership({ customer_id: customer.id, user_id: user.id, role: 'owner', created_at: now }, trx);
          await issueVerification(user, trx);
          const session = await createSession(trx, clock, { userId: user.id, ttlHours: deps.auth.sessionTtlHours, secondFactorPending: false, ip: meta.ip, userAgent: meta.userAgent });
          await audit.record({ actorType: 'user', actorId: user.id, action: 'account.signed_up', subjectType: 'customer', subjectId: customer.id, customerId: customer.id, ip: meta.ip }, trx);
          return { user: presentUser(user), customer: presentCustomer(customer, 'owner'), session };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('email_taken', 'An account with this e-mail already exists.');
        throw err;
      }
    },

    /** Marks the e-mail verified with a mailed one-time token. */
    async verifyEmail(token: string, ip: string | null): Promise<UserView> {
      return db.transaction().execute(async (trx) => {
        const now = clock.now();
        const userId = await users.consumeOneTimeToken(sha256Hex(token), 'verify_email', now, trx);
        if (!userId) throw badRequest('invalid_token', 'This verification link is invalid, expired or already used.');
        const user = await users.updateUser(userId, { email_verified_at: now, updated_at: now }, trx);
        await users.expireOneTimeTokens(userId, 'verify_email', now, trx);
        await audit.record({ actorType: 'user', actorId: userId, action: 'account.email_verified', subjectType: 'user', subjectId: userId, ip }, trx);
        return presentUser(user);
      });
    },

    async resendVerification(actor: Actor): Promise<void> {
      const user = await requireUserRow(actor.principal.userId);
      if (user.email_verified_at) throw conflict('already_verified', 'This e-mail address is already verified.');
      const now = clock.now();
      const recent = await users.countOneTimeTokensSince(user.id, 'verify_email', addHours(now, -1));
      if (recent >= MAX_VERIFICATION_MAILS_PER_HOUR) throw tooManyRequests('too_many_mails', 'Too many verification e-mails; try again later.', 3600);
      await db.transaction().execute((trx) => issueVerification(user, trx));
    },

    /** ACC-3: the caller's own account and the customers they belong to. */
    async me(userId: string) {
      const user = await requireUserRow(userId);
      const list = await customers.customersOf(userId);
      return { user: presentUser(user), customers: list.map((c) => ({ id: c.id, name: c.name, role: c.role })) };
    },

    /** ACC-3: updates the caller's own name, phone, language. */
    async updateMe(actor: Actor, patch: ProfilePatch): Promise<UserView> {
      return db.transaction().execute(async (trx) => {
        const user = await users.updateUser(
          actor.principal.userId,
          { ...(patch.name !== undefined && { name: patch.name }), ...(patch.phone !== undefined && { phone: patch.phone }), ...(patch.locale !== undefined && { locale: patch.locale }), updated_at: clock.now() },
          trx,
        );
        await audit.record({ ...auditActor(actor), action: 'account.updated', subjectType: 'user', subjectId: user.id, data: { fields: Object.keys(patch).sort() } }, trx);
        return presentUser(user);
      });
    },

    /** Changes the password after checking the current one; other sessions and every API token are revoked. */
    async changePassword(actor: Actor, currentPassword: string, newPassword: string): Promise<void> {
      requireSession(actor.principal);
      const user = await requireUserRow(actor.principal.userId);
      if (!(await verifyPassword(user.password_hash, currentPassword))) throw forbidden('wrong_password', 'The current password is not correct.');
      const passwordHash = await hashPassword(newPassword);
      await db.transaction().execute(async (trx) => {
        const now = clock.now();
        await users.updateUser(user.id, { password_hash: passwordHash, updated_at: now }, trx);
        const closed = await users.revokeUserSessions(user.id, now, actor.principal.sessionId, trx);
        const tokensRevoked = await users.revokeUserApiTokens(user.id, now, trx);
        await mailer.send(passwordChangedMail({ email: user.email, userId: user.id, name: user.name, locale: user.locale }), trx);
        await audit.record({ ...auditActor(actor), action: 'auth.password_changed', subjectType: 'user', subjectId: user.id, data: { sessionsClosed: closed, tokensRevoked } }, trx);
      });
    },

    /** A new API token; the value is returned once and only its hash is kept. */
    async createApiToken(actor: Actor, input: { name: string; expiresInDays?: number | undefined }) {
      requireSession(actor.principal);
      if (actor.principal.staffRole) throw forbidden('staff_tokens_forbidden', 'Operator staff sign in with a second factor and cannot use API tokens.');
      const { token, hash, prefix } = newApiTokenValue();
      return db.transaction().execute(async (trx) => {
        const now = clock.now();
        const row = await users.insertApiToken(
          { user_id: actor.principal.userId, name: input.name, token_hash: hash, prefix, created_at: now, last_used_at: null, expires_at: input.expiresInDays ? addHours(now, input.expiresInDays * 24) : null, revoked_at: null },
          trx,
        );
        await audit.record({ ...auditActor(actor), action: 'api_token.created', subjectType: 'api_token', subjectId: row.id, data: { name: row.name } }, trx);
        return { ...presentApiToken(row), token };
      });
    },

    async listApiTokens(userId: string) {
      return (await users.listApiTokens(userId)).map(presentApiToken);
    },

    async revokeApiToken(actor: Actor, id: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        const row = await users.revokeApiToken(actor.principal.userId, id, clock.now(), trx);
        if (!row) throw notFound('api_token_not_found');
        await audit.record({ ...auditActor(actor), action: 'api_token.revoked', subjectType: 'api_token', subjectId: row.id }, trx);
      });
    },
  };
}

export type IdentityService = ReturnType<typeof createIdentityService>;
