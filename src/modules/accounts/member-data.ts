/**
 * The personal data Havre holds about a member of the operator's own customers:
 *
 * - ACC-4 `exportData`: everything about the caller — profile, memberships, sessions, API tokens,
 *   audit entries where they act or are the subject, mails sent to them, invitations addressed to
 *   them, failed sign-ins with their address — as plain sections (JSON, or CSV per section).
 *   Secrets never leave: no password or token hash, no session id (it is the token's hash), no
 *   TOTP secret.
 * - ACC-5 `deleteAccount`: erasure on request. The user row stays (the append-only audit log
 *   points at its id; entries are never altered), with its personal data replaced: name
 *   "Deleted user", e-mail `deleted-<id>@invalid`, no phone, a password hash no password matches,
 *   no second factor; the IP and e-mail addresses the audit log held about them are erased (the
 *   chain keeps salted digests of them, audit-service.ts). Sessions and tokens are revoked, memberships removed, the mails, links,
 *   invitations and failed sign-ins about the person deleted; what remains (revoked sessions, a
 *   mail being sent at that instant) goes under the rule `deleted_user_leftovers` (PRV-4).
 *   Billing and tax records (none exist yet) will be kept under their own rule
 *   (`accounting_documents`, 10 years) with the minimum of personal data.
 *
 * Refusals: the sole owner of a customer with live tenants (any state but cancelled/destroyed)
 * gets 409 `live_tenants` (cancel them or hand ownership over first); the sole owner of a customer
 * that still has other members gets 409 `ownership_handover_required`.
 */
import { conflict, forbidden, notFound } from '../../lib/errors.ts';
import { auditActor, requireSession, type AccountsDeps, type Actor } from './accounts-deps.ts';
import { verifyPassword } from './passwords.ts';
import { withPersonal } from '../audit/audit-service.ts';

/** One section of the export: flat-ish records (an audit entry's `data` stays an object). */
export type DataRecord = Record<string, unknown>;

export const EXPORT_SECTIONS = ['profile', 'memberships', 'sessions', 'apiTokens', 'auditEntries', 'mails', 'invitations', 'signInFailures'] as const;
export type ExportSection = (typeof EXPORT_SECTIONS)[number];
export type MemberDataExport = { generatedAt: string; userId: string } & Record<ExportSection, DataRecord[]>;

/** Not a PHC string: `verifyPassword` returns false for every password. */
export const UNUSABLE_PASSWORD_HASH = '!deleted';

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function createMemberDataService(deps: AccountsDeps) {
  const { db, clock, users, customers, audit } = deps;

  return {
    /** ACC-4: everything Havre holds about the caller; the export itself is audited (ids only). */
    async exportData(actor: Actor): Promise<MemberDataExport> {
      const userId = actor.principal.userId;
      const user = await users.findUserById(userId);
      if (!user || user.deleted_at) throw notFound('user_not_found');
      const [memberships, sessions, tokens, auditEntries, mails, invitations, failures] = await Promise.all([
        db.selectFrom('memberships').innerJoin('customers', 'customers.id', 'memberships.customer_id').select(['customers.id', 'customers.name', 'memberships.role', 'memberships.created_at']).where('memberships.user_id', '=', userId).orderBy('memberships.created_at').execute(),
        db.selectFrom('sessions').select(['created_at', 'last_seen_at', 'expires_at', 'revoked_at', 'ip', 'user_agent']).where('user_id', '=', userId).orderBy('created_at').execute(),
        db.selectFrom('api_tokens').select(['id', 'name', 'prefix', 'created_at', 'last_used_at', 'expires_at', 'revoked_at']).where('user_id', '=', userId).orderBy('created_at').execute(),
        db.selectFrom('audit_log').selectAll().where((eb) => eb.or([eb('actor_id', '=', userId), eb.and([eb('subject_type', '=', 'user'), eb('subject_id', '=', userId)])])).orderBy('seq').execute(),
        db.selectFrom('mail_outbox').select(['id', 'to_address', 'template', 'locale', 'subject', 'status', 'created_at', 'sent_at', 'body_text']).where((eb) => eb.or([eb('user_id', '=', userId), eb('to_address', '=', user.email)])).orderBy('created_at').execute(),
        db.selectFrom('invitations').innerJoin('customers', 'customers.id', 'invitations.customer_id').select(['invitations.id', 'customers.name', 'invitations.role', 'invitations.created_at', 'invitations.expires_at', 'invitations.accepted_at', 'invitations.revoked_at']).where('invitations.email', '=', user.email).orderBy('invitations.created_at').execute(),
        db.selectFrom('sign_in_failures').select(['at', 'ip']).where('email', '=', user.email).orderBy('at').execute(),
      ]);
      const now = clock.now();
      const personal = await audit.personalOf(auditEntries.map((a) => a.seq));
      await audit.record({ ...auditActor(actor), action: 'account.data_exported', subjectType: 'user', subjectId: userId });
      return {
        generatedAt: now.toISOString(),
        userId,
        profile: [{ id: user.id, email: user.email, name: user.name, phone: user.phone, locale: user.locale, emailVerifiedAt: iso(user.email_verified_at), staffRole: user.staff_role, totpEnabled: user.totp_enabled_at !== null, createdAt: iso(user.created_at), updatedAt: iso(user.updated_at) }],
        memberships: memberships.map((m) => ({ customerId: m.id, customerName: m.name, role: m.role, since: iso(m.created_at) })),
        sessions: sessions.map((s) => ({ createdAt: iso(s.created_at), lastSeenAt: iso(s.last_seen_at), expiresAt: iso(s.expires_at), revokedAt: iso(s.revoked_at), ip: s.ip, userAgent: s.user_agent })),
        apiTokens: tokens.map((t) => ({ id: t.id, name: t.name, prefix: t.prefix, createdAt: iso(t.created_at), lastUsedAt: iso(t.last_used_at), expiresAt: iso(t.expires_at), revokedAt: iso(t.revoked_at) })),
        auditEntries: auditEntries.map((row) => withPersonal(row, personal)).map((a) => ({ seq: a.seq, at: iso(a.at), action: a.action, actorType: a.actor_type, actorId: a.actor_id, subjectType: a.subject_type, subjectId: a.subject_id, customerId: a.customer_id, ip: a.ip, data: a.data })),
        mails: mails.map((m) => ({ id: m.id, to: m.to_address, template: m.template, locale: m.locale, subject: m.subject, status: m.status, createdAt: iso(m.created_at), sentAt: iso(m.sent_at), text: m.body_text })),
        invitations: invitations.map((i) => ({ id: i.id, customerName: i.name, role: i.role, createdAt: iso(i.created_at), expiresAt: iso(i.expires_at), acceptedAt: iso(i.accepted_at), revokedAt: iso(i.revoked_at) })),
        signInFailures: failures.map((f) => ({ at: iso(f.at), ip: f.ip })),
      };
    },

    /** ACC-5: erases the caller's personal data after the password is typed again (see the file comment). */
    async deleteAccount(actor: Actor, password: string): Promise<void> {
      requireSession(actor.principal);
      const userId = actor.principal.userId;
      const user = await users.findUserById(userId);
      if (!user || user.deleted_at) throw notFound('user_not_found');
      if (user.staff_role) throw forbidden('staff_account', 'Operator staff accounts are closed by an operator administrator, not deleted on request.');
      // Argon2 before the transaction: no slow work while holding locks.
      if (!(await verifyPassword(user.password_hash, password))) throw forbidden('wrong_password', 'The password is not correct.');
      await db.transaction().execute(async (trx) => {
        const now = clock.now();
        const locked = await users.lockUser(userId, trx);
        if (!locked || locked.deleted_at) throw notFound('user_not_found');
        const email = locked.email;
        // Customers in a fixed order (by id), each locked like every membership change: no deadlock, no race with a promotion.
        const memberOf = await trx.selectFrom('memberships').select(['customer_id', 'role']).where('user_id', '=', userId).orderBy('customer_id').execute();
        const blockedByTenants: string[] = [];
        const blockedByMembers: string[] = [];
        for (const m of memberOf) {
          const customer = await customers.lockCustomer(m.customer_id, trx);
          if (!customer || m.role !== 'owner' || (await customers.anotherOwner(m.customer_id, userId, trx))) continue;
          // Cross-module read, deliberately narrow: does this customer still have a tenant in use?
          const live = await trx.selectFrom('tenants').select('id').where('customer_id', '=', m.customer_id).where('state', 'not in', ['cancelled', 'destroyed']).limit(1).executeTakeFirst();
          if (live) blockedByTenants.push(m.customer_id);
          else if ((await customers.listMembers(m.customer_id, trx)).length > 1) blockedByMembers.push(m.customer_id);
        }
        if (blockedByTenants.length > 0) {
          throw conflict('live_tenants', 'You are the only owner of a customer with tenants in use: cancel them, or make another member owner, before deleting your account.', { customerIds: blockedByTenants });
        }
        if (blockedByMembers.length > 0) {
          throw conflict('ownership_handover_required', 'You are the only owner of a customer that has other members: make one of them owner first.', { customerIds: blockedByMembers });
        }
        for (const m of memberOf) {
          await customers.deleteMembership(m.customer_id, userId, trx);
          await customers.revokeInvitationsBy(m.customer_id, userId, ['owner', 'administrator', 'collaborator'], now, trx);
          const customer = await customers.findCustomer(m.customer_id, trx);
          if (customer?.contact_user_id === userId) await customers.updateCustomer(m.customer_id, { contact_user_id: await customers.anotherOwner(m.customer_id, userId, trx), updated_at: now }, trx);
        }
        const sessionsRevoked = await users.revokeUserSessions(userId, now, null, trx);
        const tokensRevoked = await users.revokeUserApiTokens(userId, now, trx);
        await users.updateUser(
          userId,
          { name: 'Deleted user', email: `deleted-${userId}@invalid`, phone: null, password_hash: UNUSABLE_PASSWORD_HASH, email_verified_at: null, totp_secret_sealed: null, totp_enabled_at: null, totp_last_counter: null, deleted_at: now, updated_at: now },
          trx,
        );
        // What else names the person: links mailed to them, invitations to their address, failed
        // sign-ins with it, the mails themselves (except one an SMTP worker holds right now: the
        // leftovers rule takes it once sent).
        await trx.deleteFrom('one_time_tokens').where('user_id', '=', userId).execute();
        await trx.deleteFrom('invitations').where('email', '=', email).execute();
        await trx.deleteFrom('sign_in_failures').where('email', '=', email).execute();
        await trx.deleteFrom('mail_outbox').where((eb) => eb.or([eb('user_id', '=', userId), eb('to_address', '=', email)])).where('status', '!=', 'sending').execute();
        // The IP addresses and e-mail addresses the audit log kept about the person (its chain keeps
        // their salted digests only, and stays verifiable); this entry itself records no IP.
        const auditPersonalErased = await audit.erasePersonal({ personId: userId, email }, trx);
        await audit.record({ ...auditActor(actor), ip: null, action: 'account.deleted', subjectType: 'user', subjectId: userId, data: { customersLeft: memberOf.length, sessionsRevoked, tokensRevoked, auditPersonalErased } }, trx);
      });
    },
  };
}

export type MemberDataService = ReturnType<typeof createMemberDataService>;
