/**
 * Customer-level authorization, shared by every module that serves a customer's resources.
 *
 * A principal who is not a member of the customer gets a 404 (never a 403): we do not confirm
 * that another customer's resources exist (TEN-1 at the API level). A member whose role is too
 * low gets a 403 that names the roles needed.
 */
import type { Executor } from '../../db/db.ts';
import { forbidden, notFound } from '../../lib/errors.ts';
import type { MemberRole } from './accounts-tables.ts';
import type { Principal } from './authn.ts';
import type { CustomerRow, CustomersRepo } from './customers-repo.ts';
import { isUuid } from '../../lib/ids.ts';

export const ALL_ROLES: MemberRole[] = ['owner', 'administrator', 'collaborator'];
export const MANAGERS: MemberRole[] = ['owner', 'administrator'];

/** Whether a member with `granter` may give `role` to someone: owners grant any role, administrators any but owner. */
export function canGrant(granter: MemberRole | null, role: MemberRole): boolean {
  if (granter === 'owner') return true;
  return granter === 'administrator' && role !== 'owner';
}

/** The principal's role in `customerId`, or null when not a member. */
export async function memberRole(db: Executor, userId: string, customerId: string): Promise<MemberRole | null> {
  if (!isUuid(customerId)) return null;
  const row = await db.selectFrom('memberships').select('role').where('user_id', '=', userId).where('customer_id', '=', customerId).executeTakeFirst();
  return row?.role ?? null;
}

/**
 * Throws unless `principal` is a member of `customerId` with one of `roles`.
 * `notFoundCode` is the 404 code to use, so a tenant route answers `tenant_not_found`, not `customer_not_found`.
 */
export async function authorizeMember(
  db: Executor,
  principal: Principal,
  customerId: string,
  roles: MemberRole[],
  notFoundCode = 'customer_not_found',
): Promise<MemberRole> {
  const role = await memberRole(db, principal.userId, customerId);
  if (!role) throw notFound(notFoundCode);
  if (!roles.includes(role)) throw forbidden('role_required', `This needs one of the roles: ${roles.join(', ')}.`);
  return role;
}

/**
 * Locks the customer row for the rest of `trx`, then authorizes the principal again. The role read
 * before the lock (`authorizeMember`, to fail fast) may be stale by the time the lock is held: a
 * concurrent demotion or removal holds the same lock, so only a read after it is current.
 */
export async function lockAsMember(
  customers: Pick<CustomersRepo, 'lockCustomer'>,
  trx: Executor,
  principal: Principal,
  customerId: string,
  roles: MemberRole[],
): Promise<{ customer: CustomerRow; role: MemberRole }> {
  const customer = await customers.lockCustomer(customerId, trx);
  if (!customer) throw notFound('customer_not_found');
  const role = await authorizeMember(trx, principal, customerId, roles);
  return { customer, role };
}

/** Customers the user belongs to, with their role: used to pick a default customer. */
export async function membershipsOf(db: Executor, userId: string): Promise<{ customerId: string; role: MemberRole }[]> {
  const rows = await db.selectFrom('memberships').select(['customer_id', 'role']).where('user_id', '=', userId).orderBy('created_at').execute();
  return rows.map((r) => ({ customerId: r.customer_id, role: r.role }));
}
