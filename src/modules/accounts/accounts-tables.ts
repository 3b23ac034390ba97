/** Control-plane tables of the accounts module (see migrations/20261123100000_accounts.sql). */
import type { ColumnType, Generated } from 'kysely';

export type MemberRole = 'owner' | 'administrator' | 'collaborator';
export type StaffRole = 'admin' | 'support' | 'billing';
export type Locale = 'fr' | 'en';

export interface CustomersTable {
  id: Generated<string>;
  name: string;
  country: string | null;
  postal_address: string | null;
  contact_user_id: string | null;
  dpo_name: string | null;
  dpo_email: string | null;
  /** BIL-8: the customer's VAT number (billing module). */
  vat_number: ColumnType<string | null, string | null | undefined, string | null>;
  /** BIL-12: true when the customer refused to be cited as a reference. */
  refuses_reference: ColumnType<boolean, boolean | undefined, boolean>;
  created_at: Date;
  updated_at: Date;
}

export interface UsersTable {
  id: Generated<string>;
  email: string;
  name: string;
  phone: string | null;
  locale: Locale;
  password_hash: string;
  email_verified_at: Date | null;
  staff_role: StaffRole | null;
  totp_secret_sealed: string | null;
  totp_enabled_at: Date | null;
  /** Time step of the last accepted TOTP code (replay protection); int8 comes back as a string. */
  totp_last_counter: ColumnType<string | null, number | null | undefined, number | null>;
  created_at: Date;
  updated_at: Date;
  /** ACC-5: set when the account was deleted (personal data erased; the row stays for the audit log's ids). */
  deleted_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface MembershipsTable {
  customer_id: string;
  user_id: string;
  role: MemberRole;
  created_at: Date;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  second_factor_pending: Generated<boolean>;
  ip: string | null;
  user_agent: string | null;
  created_at: Date;
  last_seen_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

export interface ApiTokensTable {
  id: Generated<string>;
  user_id: string;
  name: string;
  token_hash: string;
  prefix: string;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export interface OneTimeTokensTable {
  token_hash: string;
  purpose: 'verify_email' | 'reset_password';
  user_id: string;
  created_at: Date;
  expires_at: Date;
  used_at: Date | null;
}

export interface InvitationsTable {
  id: Generated<string>;
  customer_id: string;
  email: string;
  role: MemberRole;
  invited_by: string | null;
  token_hash: string;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
  revoked_at: Date | null;
}

export interface SignInFailuresTable {
  id: Generated<string>;
  email: string;
  ip: string;
  at: Date;
  /** Set when a full sign-in (or a password reset) ends the account's lock-out; the IP still counts the row. */
  cleared_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface AccountsTables {
  customers: CustomersTable;
  users: UsersTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  one_time_tokens: OneTimeTokensTable;
  invitations: InvitationsTable;
  sign_in_failures: SignInFailuresTable;
}
