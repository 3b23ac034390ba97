/**
 * Test factories: isolated customers, members and staff built directly in the control-plane
 * database (so tests do not depend on the sign-up routes), each with a signed-in HTTP client.
 */
import { randomBytes } from 'node:crypto';
import { hash, type Algorithm } from '@node-rs/argon2';
import { createSession } from '../src/modules/accounts/authn.ts';
import type { MemberRole, StaffRole } from '../src/modules/accounts/accounts-tables.ts';
import type { ServerView } from '../src/modules/fleet/index.ts';
import type { HttpClient, TestContext } from './context.ts';

export interface Member {
  customerId: string;
  userId: string;
  email: string;
  password: string;
  role: MemberRole;
  /** Signed in: cookie and CSRF token set. */
  http: HttpClient;
}

export interface Staff {
  userId: string;
  email: string;
  role: StaffRole;
  http: HttpClient;
}

// `Algorithm` is a const enum in the typings, absent at runtime: Argon2id is 2.
const ARGON2ID = 2 as Algorithm;
const unique = () => randomBytes(5).toString('hex');

// One hash for every factory user: Argon2id is deliberately slow, and tests sign in by session.
let passwordHash: Promise<string> | null = null;
const TEST_PASSWORD = 'correct horse battery staple';

async function testPasswordHash(): Promise<string> {
  passwordHash ??= hash(TEST_PASSWORD, { algorithm: ARGON2ID });
  return passwordHash;
}

async function signedInClient(ctx: TestContext, userId: string): Promise<HttpClient> {
  const session = await createSession(ctx.core.db, ctx.core.clock, { userId, ttlHours: 24, secondFactorPending: false, ip: null, userAgent: 'vitest' });
  const http = ctx.client();
  http.cookie = `havre_session=${session.token}`;
  http.csrfToken = session.csrfToken;
  return http;
}

async function insertUser(ctx: TestContext, input: { email: string; verified: boolean; staffRole: StaffRole | null }): Promise<string> {
  const now = ctx.core.clock.now();
  const row = await ctx.core.db
    .insertInto('users')
    .values({
      email: input.email,
      name: input.staffRole ? 'Test Staff' : 'Test Member',
      phone: null,
      locale: 'en',
      password_hash: await testPasswordHash(),
      email_verified_at: input.verified ? now : null,
      staff_role: input.staffRole,
      totp_secret_sealed: null,
      totp_enabled_at: input.staffRole ? now : null,
      totp_last_counter: null,
      created_at: now,
      updated_at: now,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

/**
 * A user who is a member of a customer (a new, isolated customer unless `customerId` is given),
 * signed in on a fresh client. Defaults: owner, e-mail verified.
 */
export async function createMember(ctx: TestContext, options: { role?: MemberRole; verified?: boolean; customerId?: string } = {}): Promise<Member> {
  const now = ctx.core.clock.now();
  const role = options.role ?? 'owner';
  const customerId =
    options.customerId ??
    (
      await ctx.core.db
        .insertInto('customers')
        .values({ name: `Customer ${unique()}`, country: 'FR', postal_address: null, contact_user_id: null, dpo_name: null, dpo_email: null, created_at: now, updated_at: now })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
  const email = `member-${unique()}@example.test`;
  const userId = await insertUser(ctx, { email, verified: options.verified ?? true, staffRole: null });
  await ctx.core.db.insertInto('memberships').values({ customer_id: customerId, user_id: userId, role, created_at: now }).execute();
  return { customerId, userId, email, password: TEST_PASSWORD, role, http: await signedInClient(ctx, userId) };
}

/** An operator staff member with `role`, signed in with the second factor already passed. */
export async function createStaff(ctx: TestContext, role: StaffRole = 'admin'): Promise<Staff> {
  const email = `staff-${unique()}@havre.test`;
  const userId = await insertUser(ctx, { email, verified: true, staffRole: role });
  return { userId, email, role, http: await signedInClient(ctx, userId) };
}

/** Registers the harness's fr and de database servers through the fleet module; returns them by region. */
export async function registerServers(ctx: TestContext): Promise<Record<string, ServerView>> {
  const out: Record<string, ServerView> = {};
  for (const s of ctx.regionServers) {
    out[s.region] = await ctx.app.modules.fleet.servers.add({ name: `${s.region}-${unique()}`, region: s.region, adminUrl: s.adminUrl });
  }
  return out;
}
