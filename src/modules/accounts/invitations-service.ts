/**
 * ACC-2: members are invited by e-mail. An invitation is a one-time, expiring token mailed to the
 * address; accepting it proves the mailbox, so a new account made from it counts as verified. An
 * existing account joins only when signed in as that account.
 */
import { badRequest, conflict, forbidden, notFound, tooManyRequests, unauthorized } from '../../lib/errors.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import type { Executor } from '../../db/db.ts';
import { authorizeMember, canGrant, lockAsMember, memberRole, MANAGERS } from './membership.ts';
import { createSession, type NewSession, type Principal } from './authn.ts';
import { addHours, auditActor, isUniqueViolation, oneTimeToken, type AccountsDeps, type Actor, type RequestMeta } from './accounts-deps.ts';
import { invitationMail } from './accounts-mails.ts';
import { presentCustomer, presentInvitation, presentUser, type CustomerView, type UserView } from './accounts-presenters.ts';
import type { Locale, MemberRole } from './accounts-tables.ts';
import type { InvitationRow } from './customers-repo.ts';
import { hashPassword } from './passwords.ts';

/**
 * Invitation mails a customer may send per hour. Each one mails an address the customer chose, so
 * without a cap an account could use Havre to send mail at will. (A named constant, not config:
 * the config schema belongs to another part of Havre; move it there when it needs tuning.)
 */
export const MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR = 20;

export interface AcceptInput {
  token: string;
  name?: string | undefined;
  password?: string | undefined;
  locale: Locale;
}

export function createInvitationsService(deps: AccountsDeps) {
  const { db, clock, users, customers, audit, mailer } = deps;
  const invalid = () => badRequest('invalid_token', 'This invitation is invalid, expired, revoked or already used.');

  /**
   * An invitation is only as good as its sender's current rights: the inviter must still be a
   * member whose role may grant the invited role (they may have left or been demoted since).
   */
  const requireInviterRights = async (invitation: InvitationRow, trx: Executor) => {
    const inviterRole = invitation.invited_by ? await memberRole(trx, invitation.invited_by, invitation.customer_id) : null;
    if (!canGrant(inviterRole, invitation.role)) {
      throw badRequest('invitation_no_longer_valid', 'The person who sent this invitation can no longer grant this role; ask for a new invitation.');
    }
  };

  return {
    async invite(actor: Actor, customerId: string, input: { email: string; role: MemberRole }) {
      const ownerCheck = (role: MemberRole) => {
        if (input.role === 'owner' && role !== 'owner') throw forbidden('owner_required', 'Only an owner can invite an owner.');
      };
      ownerCheck(await authorizeMember(db, actor.principal, customerId, MANAGERS));
      // Only a proven mailbox may make Havre mail others.
      if (!actor.principal.emailVerified) throw forbidden('email_not_verified', 'Confirm your e-mail address before inviting anyone.');
      const email = input.email.toLowerCase();
      const { token, hash } = oneTimeToken();
      return db.transaction().execute(async (trx) => {
        // Again under the lock: the role read above may have changed since.
        const { customer, role } = await lockAsMember(customers, trx, actor.principal, customerId, MANAGERS);
        ownerCheck(role);
        // Counted under the customer lock, so concurrent invitations cannot overrun the cap.
        const now = clock.now();
        const recent = await customers.countInvitationsSince(customerId, addHours(now, -1), trx);
        if (recent.count >= MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR) {
          const retryMs = (recent.oldest?.getTime() ?? now.getTime()) + 3_600_000 - now.getTime();
          throw tooManyRequests('too_many_invitations', `At most ${MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR} invitations an hour; try again later.`, Math.max(1, Math.ceil(retryMs / 1000)));
        }
        const invitee = await users.findUserByEmail(email, trx);
        if (invitee && (await customers.findMembership(customerId, invitee.id, trx))) throw conflict('already_member', 'This person is already a member.');
        await customers.revokePendingInvitations(customerId, email, now, trx);
        const invitation = await customers.insertInvitation(
          { customer_id: customerId, email, role: input.role, invited_by: actor.principal.userId, token_hash: hash, created_at: now, expires_at: addHours(now, deps.auth.invitationTtlDays * 24), accepted_at: null, revoked_at: null },
          trx,
        );
        await mailer.send(
          invitationMail(
            { baseUrl: deps.baseUrl },
            { email, userId: invitee?.id ?? null, locale: invitee?.locale ?? actor.principal.locale },
            { inviterName: actor.principal.name, customerName: customer.name, role: input.role, ttlDays: deps.auth.invitationTtlDays },
            token,
          ),
          trx,
        );
        await audit.record({ ...auditActor(actor), action: 'member.invited', subjectType: 'invitation', subjectId: invitation.id, customerId, data: { email, role: input.role } }, trx);
        return presentInvitation(invitation, now);
      });
    },

    async listInvitations(actor: Actor, customerId: string) {
      await authorizeMember(db, actor.principal, customerId, MANAGERS);
      const now = clock.now();
      return (await customers.listInvitations(customerId)).map((i) => presentInvitation(i, now));
    },

    async revokeInvitation(actor: Actor, customerId: string, invitationId: string): Promise<void> {
      await authorizeMember(db, actor.principal, customerId, MANAGERS);
      await db.transaction().execute(async (trx) => {
        const revoked = await customers.revokeInvitation(customerId, invitationId, clock.now(), trx);
        if (!revoked) throw notFound('invitation_not_found');
        await audit.record({ ...auditActor(actor), action: 'member.invitation_revoked', subjectType: 'invitation', subjectId: invitationId, customerId, data: { email: revoked.email } }, trx);
      });
    },

    /**
     * Accepts an invitation. An existing account must be the signed-in caller; otherwise a new
     * account is created (name and password needed) and a session opened for it.
     */
    async accept(principal: Principal | null, input: AcceptInput, meta: RequestMeta): Promise<{ customer: CustomerView; user: UserView; session: NewSession | null }> {
      const hash = sha256Hex(input.token);
      const pending = await customers.findPendingInvitation(hash, clock.now());
      if (!pending) throw invalid();
      await requireInviterRights(pending, db);
      const existing = await users.findUserByEmail(pending.email);
      if (existing) {
        if (!principal || principal.secondFactorPending) throw unauthorized('sign_in_required', 'Sign in as the invited account to accept this invitation.');
        if (principal.userId !== existing.id) throw forbidden('wrong_account', 'This invitation is for another account.');
      } else if (!input.name || !input.password) {
        throw badRequest('name_and_password_required', 'Give a name and a password to create your account.');
      }
      const passwordHash = existing ? null : await hashPassword(input.password!);
      try {
        return await db.transaction().execute(async (trx) => {
          // The customer lock orders this after any concurrent removal or demotion of the inviter.
          await customers.lockCustomer(pending.customer_id, trx);
          const now = clock.now();
          const invitation = await customers.acceptInvitation(hash, now, trx);
          if (!invitation) throw invalid();
          await requireInviterRights(invitation, trx);
          const user = existing
            ? await users.updateUser(existing.id, { email_verified_at: existing.email_verified_at ?? now, updated_at: now }, trx)
            : await users.insertUser(
                { email: invitation.email, name: input.name!, phone: null, locale: input.locale, password_hash: passwordHash!, email_verified_at: now, staff_role: null, totp_secret_sealed: null, totp_enabled_at: null, created_at: now, updated_at: now },
                trx,
              );
          await customers.insertMembership({ customer_id: invitation.customer_id, user_id: user.id, role: invitation.role, created_at: now }, trx);
          const membership = await customers.findMembership(invitation.customer_id, user.id, trx);
          const customer = await customers.findCustomer(invitation.customer_id, trx);
          const session = existing ? null : await createSession(trx, clock, { userId: user.id, ttlHours: deps.auth.sessionTtlHours, secondFactorPending: false, ip: meta.ip, userAgent: meta.userAgent });
          await audit.record(
            { actorType: 'user', actorId: user.id, action: 'member.joined', subjectType: 'user', subjectId: user.id, customerId: invitation.customer_id, ip: meta.ip, data: { invitationId: invitation.id, role: membership!.role } },
            trx,
          );
          return { customer: presentCustomer(customer!, membership!.role), user: presentUser(user), session };
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('email_taken', 'An account with this e-mail already exists; sign in and accept again.');
        throw err;
      }
    },
  };
}

export type InvitationsService = ReturnType<typeof createInvitationsService>;
