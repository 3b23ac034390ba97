/**
 * SQL of customers, memberships and invitations. Every method takes an optional executor so
 * callers can run it inside their transaction.
 */
import type { ExpressionBuilder, Insertable, Selectable, Updateable } from 'kysely';
import type { DB } from '../../db/schema.ts';
import type { Db, Executor } from '../../db/db.ts';
import type { CustomersTable, InvitationsTable, MemberRole, MembershipsTable } from './accounts-tables.ts';
import { isUuid } from '../../lib/ids.ts';

export type CustomerRow = Selectable<CustomersTable>;
export type InvitationRow = Selectable<InvitationsTable>;
export type MembershipRow = Selectable<MembershipsTable>;

export interface MemberRow {
  userId: string;
  name: string;
  email: string;
  role: MemberRole;
  joinedAt: Date;
}

/** The invitation with this token, if still pending (not accepted, revoked or expired). */
function livePending(tokenHash: string, now: Date) {
  return (eb: ExpressionBuilder<DB, 'invitations'>) =>
    eb.and([eb('token_hash', '=', tokenHash), eb('accepted_at', 'is', null), eb('revoked_at', 'is', null), eb('expires_at', '>', now)]);
}

/** An update revoking the customer's pending (not accepted, not revoked) invitations; callers narrow it. */
function revokePending(trx: Executor, customerId: string, now: Date) {
  return trx.updateTable('invitations').set({ revoked_at: now }).where('customer_id', '=', customerId).where('accepted_at', 'is', null).where('revoked_at', 'is', null);
}

export function createCustomersRepo(db: Db) {
  return {
    insertCustomer(values: Insertable<CustomersTable>, trx: Executor = db): Promise<CustomerRow> {
      return trx.insertInto('customers').values(values).returningAll().executeTakeFirstOrThrow();
    },

    findCustomer(id: string, trx: Executor = db): Promise<CustomerRow | undefined> {
      if (!isUuid(id)) return Promise.resolve(undefined);
      return trx.selectFrom('customers').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /**
     * Locks the customer row for the rest of the transaction: membership changes of one customer
     * are serialised, so two concurrent demotions cannot both pass the last-owner check.
     */
    lockCustomer(id: string, trx: Executor): Promise<CustomerRow | undefined> {
      return trx.selectFrom('customers').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    },

    updateCustomer(id: string, patch: Updateable<CustomersTable>, trx: Executor = db): Promise<CustomerRow> {
      return trx.updateTable('customers').set(patch).where('id', '=', id).returningAll().executeTakeFirstOrThrow();
    },

    /** The customers a user belongs to, with the user's role in each. */
    customersOf(userId: string, trx: Executor = db): Promise<(CustomerRow & { role: MemberRole })[]> {
      return trx
        .selectFrom('customers')
        .innerJoin('memberships', 'memberships.customer_id', 'customers.id')
        .selectAll('customers')
        .select('memberships.role')
        .where('memberships.user_id', '=', userId)
        .orderBy('memberships.created_at')
        .execute();
    },

    async insertMembership(values: Insertable<MembershipsTable>, trx: Executor = db): Promise<void> {
      await trx.insertInto('memberships').values(values).onConflict((oc) => oc.columns(['customer_id', 'user_id']).doNothing()).execute();
    },

    findMembership(customerId: string, userId: string, trx: Executor = db): Promise<MembershipRow | undefined> {
      if (!isUuid(userId)) return Promise.resolve(undefined);
      return trx.selectFrom('memberships').selectAll().where('customer_id', '=', customerId).where('user_id', '=', userId).executeTakeFirst();
    },

    listMembers(customerId: string, trx: Executor = db): Promise<MemberRow[]> {
      return trx
        .selectFrom('memberships')
        .innerJoin('users', 'users.id', 'memberships.user_id')
        .select(['users.id as userId', 'users.name', 'users.email', 'memberships.role', 'memberships.created_at as joinedAt'])
        .where('memberships.customer_id', '=', customerId)
        .orderBy('memberships.created_at')
        .execute();
    },

    async updateRole(customerId: string, userId: string, role: MemberRole, trx: Executor = db): Promise<void> {
      await trx.updateTable('memberships').set({ role }).where('customer_id', '=', customerId).where('user_id', '=', userId).execute();
    },

    async deleteMembership(customerId: string, userId: string, trx: Executor = db): Promise<void> {
      await trx.deleteFrom('memberships').where('customer_id', '=', customerId).where('user_id', '=', userId).execute();
    },

    async countOwners(customerId: string, trx: Executor = db): Promise<number> {
      const row = await trx
        .selectFrom('memberships')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('customer_id', '=', customerId)
        .where('role', '=', 'owner')
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** Any owner of the customer other than `exceptUserId` (the designated contact falls back to one). */
    async anotherOwner(customerId: string, exceptUserId: string, trx: Executor = db): Promise<string | null> {
      const row = await trx
        .selectFrom('memberships')
        .select('user_id')
        .where('customer_id', '=', customerId)
        .where('role', '=', 'owner')
        .where('user_id', '!=', exceptUserId)
        .orderBy('created_at')
        .limit(1)
        .executeTakeFirst();
      return row?.user_id ?? null;
    },

    // Invitations.
    insertInvitation(values: Insertable<InvitationsTable>, trx: Executor = db): Promise<InvitationRow> {
      return trx.insertInto('invitations').values(values).returningAll().executeTakeFirstOrThrow();
    },

    async revokePendingInvitations(customerId: string, email: string, now: Date, trx: Executor = db): Promise<void> {
      await revokePending(trx, customerId, now).where('email', '=', email).execute();
    },

    /** Revokes the pending invitations `invitedBy` sent for one of `roles` (they left, or lost the right to grant them). */
    async revokeInvitationsBy(customerId: string, invitedBy: string, roles: MemberRole[], now: Date, trx: Executor = db): Promise<number> {
      if (roles.length === 0) return 0;
      const res = await revokePending(trx, customerId, now).where('invited_by', '=', invitedBy).where('role', 'in', roles).executeTakeFirst();
      return Number(res.numUpdatedRows);
    },

    /** How many invitations the customer sent since `since`, and when the oldest of them was sent. */
    async countInvitationsSince(customerId: string, since: Date, trx: Executor = db): Promise<{ count: number; oldest: Date | null }> {
      const row = await trx
        .selectFrom('invitations')
        .select((eb) => [eb.fn.countAll<string>().as('n'), eb.fn.min('created_at').as('oldest')])
        .where('customer_id', '=', customerId)
        .where('created_at', '>', since)
        .executeTakeFirstOrThrow();
      return { count: Number(row.n), oldest: row.oldest ? new Date(row.oldest as Date) : null };
    },

    listInvitations(customerId: string, trx: Executor = db): Promise<InvitationRow[]> {
      return trx.selectFrom('invitations').selectAll().where('customer_id', '=', customerId).orderBy('created_at', 'desc').limit(200).execute();
    },

    /** Revokes a pending invitation of this customer; undefined when there is none with that id. */
    revokeInvitation(customerId: string, id: string, now: Date, trx: Executor = db): Promise<InvitationRow | undefined> {
      if (!isUuid(id)) return Promise.resolve(undefined);
      return revokePending(trx, customerId, now).where('id', '=', id).returningAll().executeTakeFirst();
    },

    /** Accepts a pending, unexpired invitation once (compare-and-set). */
    acceptInvitation(tokenHash: string, now: Date, trx: Executor = db): Promise<InvitationRow | undefined> {
      return trx.updateTable('invitations').set({ accepted_at: now }).where(livePending(tokenHash, now)).returningAll().executeTakeFirst();
    },

    findPendingInvitation(tokenHash: string, now: Date, trx: Executor = db): Promise<InvitationRow | undefined> {
      return trx.selectFrom('invitations').selectAll().where(livePending(tokenHash, now)).executeTakeFirst();
    },
  };
}

export type CustomersRepo = ReturnType<typeof createCustomersRepo>;
