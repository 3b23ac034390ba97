/**
 * What the API shows of accounts: explicit whitelists of fields. A database row never leaves the
 * module as is, so a new column (or the password hash, or a sealed secret) cannot leak by accident.
 */
import type { ApiTokenRow, UserRow } from './accounts-repo.ts';
import type { MemberRole } from './accounts-tables.ts';
import type { CustomerRow, InvitationRow, MemberRow } from './customers-repo.ts';

export function presentUser(u: UserRow) {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    phone: u.phone,
    locale: u.locale,
    emailVerified: u.email_verified_at !== null,
    staffRole: u.staff_role,
    totpEnabled: u.totp_enabled_at !== null,
    createdAt: u.created_at.toISOString(),
  };
}
export type UserView = ReturnType<typeof presentUser>;

export function presentCustomer(c: CustomerRow, role: MemberRole) {
  return {
    id: c.id,
    name: c.name,
    country: c.country,
    postalAddress: c.postal_address,
    contactUserId: c.contact_user_id,
    dataProtectionContact: c.dpo_email ? { name: c.dpo_name, email: c.dpo_email } : null,
    /** The caller's role in this customer. */
    role,
    createdAt: c.created_at.toISOString(),
    updatedAt: c.updated_at.toISOString(),
  };
}
export type CustomerView = ReturnType<typeof presentCustomer>;

export function presentMember(m: MemberRow, contactUserId: string | null) {
  return {
    userId: m.userId,
    name: m.name,
    email: m.email,
    role: m.role,
    isContact: m.userId === contactUserId,
    joinedAt: m.joinedAt.toISOString(),
  };
}

export function invitationStatus(i: InvitationRow, now: Date): 'pending' | 'accepted' | 'revoked' | 'expired' {
  if (i.accepted_at) return 'accepted';
  if (i.revoked_at) return 'revoked';
  return i.expires_at <= now ? 'expired' : 'pending';
}

export function presentInvitation(i: InvitationRow, now: Date) {
  return {
    id: i.id,
    customerId: i.customer_id,
    email: i.email,
    role: i.role,
    status: invitationStatus(i, now),
    invitedBy: i.invited_by,
    createdAt: i.created_at.toISOString(),
    expiresAt: i.expires_at.toISOString(),
  };
}

export function presentApiToken(t: ApiTokenRow) {
  return {
    id: t.id,
    name: t.name,
    prefix: t.prefix,
    createdAt: t.created_at.toISOString(),
    lastUsedAt: t.last_used_at?.toISOString() ?? null,
    expiresAt: t.expires_at?.toISOString() ?? null,
  };
}
