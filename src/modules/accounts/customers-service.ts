/**
 * ACC-2: customers, their members and roles, the designated contact and the data-protection
 * contact. Every membership change locks the customer row, so the rules (an owner always
 * remains; only an owner grants or takes the owner role) hold under concurrent requests.
 * Invitations are in invitations-service.ts.
 */
import { badRequest, conflict, forbidden, notFound } from '../../lib/errors.ts';
import type { Executor } from '../../db/db.ts';
import { authorizeMember, canGrant, lockAsMember, ALL_ROLES, MANAGERS } from './membership.ts';
import { auditActor, type AccountsDeps, type Actor } from './accounts-deps.ts';
import { presentCustomer, presentMember, type CustomerView } from './accounts-presenters.ts';
import type { MemberRole } from './accounts-tables.ts';

export interface CustomerPatch {
  name?: string | undefined;
  postalAddress?: string | null | undefined;
  country?: string | null | undefined;
  contactUserId?: string | undefined;
  dataProtectionContact?: { name: string; email: string } | null | undefined;
}

export function createCustomersService(deps: AccountsDeps) {
  const { db, clock, customers, audit } = deps;

  /** Locks the customer and authorizes the actor again under the lock (their role may have just changed). */
  const lock = (actor: Actor, customerId: string, roles: MemberRole[], trx: Executor) => lockAsMember(customers, trx, actor.principal, customerId, roles);

  const requireMember = async (customerId: string, userId: string, trx: Executor) => {
    const membership = await customers.findMembership(customerId, userId, trx);
    if (!membership) throw notFound('member_not_found');
    return membership;
  };

  /** Only an owner grants or takes away the owner role; the last owner cannot go. */
  const checkOwnerRules = async (actorRole: MemberRole, customerId: string, current: MemberRole, next: MemberRole | null, trx: Executor) => {
    if ((current === 'owner' || next === 'owner') && actorRole !== 'owner') {
      throw forbidden('owner_required', 'Only an owner can grant or take away the owner role.');
    }
    if (current === 'owner' && next !== 'owner' && (await customers.countOwners(customerId, trx)) <= 1) {
      throw conflict('last_owner', 'A customer must keep at least one owner.');
    }
  };

  return {
    async listCustomers(userId: string): Promise<CustomerView[]> {
      return (await customers.customersOf(userId)).map((c) => presentCustomer(c, c.role));
    },

    async getCustomer(actor: Actor, customerId: string): Promise<CustomerView> {
      const role = await authorizeMember(db, actor.principal, customerId, ALL_ROLES);
      const customer = await customers.findCustomer(customerId);
      if (!customer) throw notFound('customer_not_found');
      return presentCustomer(customer, role);
    },

    /** Owners and administrators update the company data and the two contacts. */
    async updateCustomer(actor: Actor, customerId: string, patch: CustomerPatch): Promise<CustomerView> {
      await authorizeMember(db, actor.principal, customerId, MANAGERS);
      return db.transaction().execute(async (trx) => {
        const { role } = await lock(actor, customerId, MANAGERS, trx);
        if (patch.contactUserId !== undefined && !(await customers.findMembership(customerId, patch.contactUserId, trx))) {
          throw badRequest('contact_not_member', 'The designated contact must be a member of the customer.');
        }
        const dpo = patch.dataProtectionContact;
        const updated = await customers.updateCustomer(
          customerId,
          {
            ...(patch.name !== undefined && { name: patch.name }),
            ...(patch.postalAddress !== undefined && { postal_address: patch.postalAddress }),
            ...(patch.country !== undefined && { country: patch.country }),
            ...(patch.contactUserId !== undefined && { contact_user_id: patch.contactUserId }),
            ...(dpo !== undefined && { dpo_name: dpo?.name ?? null, dpo_email: dpo?.email.toLowerCase() ?? null }),
            updated_at: clock.now(),
          },
          trx,
        );
        await audit.record({ ...auditActor(actor), action: 'customer.updated', subjectType: 'customer', subjectId: customerId, customerId, data: { fields: Object.keys(patch).sort() } }, trx);
        return presentCustomer(updated, role);
      });
    },

    /** Every member may see who else is a member. */
    async listMembers(actor: Actor, customerId: string) {
      await authorizeMember(db, actor.principal, customerId, ALL_ROLES);
      const customer = await customers.findCustomer(customerId);
      const members = await customers.listMembers(customerId);
      return members.map((m) => presentMember(m, customer?.contact_user_id ?? null));
    },

    async changeRole(actor: Actor, customerId: string, userId: string, role: MemberRole) {
      await authorizeMember(db, actor.principal, customerId, MANAGERS);
      return db.transaction().execute(async (trx) => {
        const { customer, role: actorRole } = await lock(actor, customerId, MANAGERS, trx);
        const membership = await requireMember(customerId, userId, trx);
        if (membership.role !== role) {
          await checkOwnerRules(actorRole, customerId, membership.role, role, trx);
          await customers.updateRole(customerId, userId, role, trx);
          // Their pending invitations for roles they may no longer grant are revoked.
          await customers.revokeInvitationsBy(customerId, userId, ALL_ROLES.filter((r) => !canGrant(role, r)), clock.now(), trx);
          await audit.record({ ...auditActor(actor), action: 'member.role_changed', subjectType: 'user', subjectId: userId, customerId, data: { from: membership.role, to: role } }, trx);
        }
        const member = (await customers.listMembers(customerId, trx)).find((m) => m.userId === userId)!;
        return presentMember(member, customer.contact_user_id);
      });
    },

    /** Managers remove members; any member may leave. The designated contact falls back to an owner. */
    async removeMember(actor: Actor, customerId: string, userId: string): Promise<void> {
      const self = userId === actor.principal.userId;
      const allowed = self ? ALL_ROLES : MANAGERS;
      await authorizeMember(db, actor.principal, customerId, allowed);
      await db.transaction().execute(async (trx) => {
        const { customer, role: actorRole } = await lock(actor, customerId, allowed, trx);
        const membership = await requireMember(customerId, userId, trx);
        // Leaving on one's own needs no owner rights, but the last owner still cannot leave.
        await checkOwnerRules(self ? 'owner' : actorRole, customerId, membership.role, null, trx);
        await customers.deleteMembership(customerId, userId, trx);
        // Invitations they sent die with their membership.
        await customers.revokeInvitationsBy(customerId, userId, ALL_ROLES, clock.now(), trx);
        if (customer.contact_user_id === userId) {
          const fallback = await customers.anotherOwner(customerId, userId, trx);
          await customers.updateCustomer(customerId, { contact_user_id: fallback, updated_at: clock.now() }, trx);
        }
        await audit.record({ ...auditActor(actor), action: 'member.removed', subjectType: 'user', subjectId: userId, customerId, data: { role: membership.role } }, trx);
      });
    },
  };
}

export type CustomersService = ReturnType<typeof createCustomersService>;
