import pg from 'pg';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpResponse, type TestContext } from '../../../test/context.ts';
import { addMember, signUp, uniqueEmail, type AddedMember, type SignedUp } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

/** Waits until some backend of this database waits for a lock (the request reached the customer lock). */
async function untilSomeoneWaitsForALock(): Promise<void> {
  for (let waited = 0; waited < 5000; waited += 10) {
    const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`.execute(ctx.core.db);
    if (Number(rows[0]!.n) > 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error('the request never waited for the customer lock');
}

/**
 * Runs `request` while another transaction holds the customer lock and demotes `admin` to
 * collaborator: the request reads the old role first, then waits for the lock; the demotion
 * commits once it waits. Deterministic: the commit happens only after the request is blocked.
 */
async function duringDemotion(owner: SignedUp, admin: AddedMember, request: () => Promise<HttpResponse>): Promise<HttpResponse> {
  const demoter = new pg.Client({ connectionString: ctx.core.config.databaseUrl! });
  await demoter.connect();
  try {
    await demoter.query('BEGIN');
    await demoter.query('SELECT id FROM customers WHERE id = $1 FOR UPDATE', [owner.customerId]);
    await demoter.query(`UPDATE memberships SET role = 'collaborator' WHERE customer_id = $1 AND user_id = $2`, [owner.customerId, admin.userId]);
    const answer = request();
    await untilSomeoneWaitsForALock();
    await demoter.query('COMMIT');
    return await answer;
  } finally {
    await demoter.end();
  }
}

const roleOf = async (customerId: string, userId: string) =>
  (await ctx.core.db.selectFrom('memberships').select('role').where('customer_id', '=', customerId).where('user_id', '=', userId).executeTakeFirst())?.role ?? null;

type Case = [label: string, request: (admin: AddedMember, base: string, target: AddedMember) => Promise<HttpResponse>, state: (owner: SignedUp, target: AddedMember) => Promise<unknown>, unchanged: unknown];

const cases: Case[] = [
  ['change a role', (admin, base, target) => admin.http.patch(`${base}/members/${target.userId}`, { role: 'administrator' }), (owner, target) => roleOf(owner.customerId, target.userId), 'collaborator'],
  ['remove a member', (admin, base, target) => admin.http.delete(`${base}/members/${target.userId}`), (owner, target) => roleOf(owner.customerId, target.userId), 'collaborator'],
  ['invite', (admin, base) => admin.http.post(`${base}/invitations`, { email: uniqueEmail('raced'), role: 'collaborator' }), async (owner) => (await ctx.core.db.selectFrom('invitations').select('id').where('customer_id', '=', owner.customerId).where('email', 'like', 'raced-%').execute()).length, 0],
  ['edit the company', (admin, base) => admin.http.patch(base, { name: 'Raced SAS' }), async (owner) => (await ctx.core.db.selectFrom('customers').select('name').where('id', '=', owner.customerId).executeTakeFirstOrThrow()).name, 'Acme SAS'],
];

describe("the caller's role is read again under the customer lock", () => {
  it.each(cases)('[ACC-2] an administrator demoted while their request waits for the lock cannot %s (403 role_required)', async (_label, request, state, unchanged) => {
    const owner = await signUp(ctx);
    const target = await addMember(ctx, owner, 'collaborator');
    const admin = await addMember(ctx, owner, 'administrator');
    const res = await duringDemotion(owner, admin, () => request(admin, `/api/v1/customers/${owner.customerId}`, target));
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('role_required');
    expect(await state(owner, target)).toEqual(unchanged);
  });
});
