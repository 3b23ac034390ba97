import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, registerServers, type Member } from '../../../test/factories.ts';
import { withClient } from '../fleet/fleet-test-helpers.ts';
import type { ServerView } from '../fleet/index.ts';
import { createTenantsModule } from './index.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;
let owner: Member;

beforeAll(async () => {
  ctx = await createTestContext();
  servers = await registerServers(ctx);
  owner = await createMember(ctx);
});
afterAll(async () => ctx?.close());

async function tenantCount(customerId: string): Promise<number> {
  const row = await ctx.core.db.selectFrom('tenants').select((eb) => eb.fn.countAll<string>().as('n')).where('customer_id', '=', customerId).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The database name of a tenant and whether it exists on the cluster of `region`. */
async function databaseOn(tenantId: string, region: string): Promise<boolean> {
  const { database_name } = await ctx.core.db
    .selectFrom('tenants')
    .innerJoin('tenant_databases', 'tenant_databases.id', 'tenants.tenant_database_id')
    .select('tenant_databases.database_name')
    .where('tenants.id', '=', tenantId)
    .executeTakeFirstOrThrow();
  const url = ctx.regionServers.find((s) => s.region === region)!.adminUrl;
  return withClient(url, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database_name])).rowCount === 1);
}

describe('tenant creation', () => {
  it('[TEN-2] a tenant created in region de lands on the de server; the default region is fr', async () => {
    const de = await owner.http.post('/api/v1/tenants', { name: 'Berlin office', region: 'de' });
    expect(de.status).toBe(201);
    expect(de.body).toMatchObject({ region: 'de', server: servers.de!.name, state: 'trial' });
    expect(await databaseOn(de.body.id, 'de')).toBe(true);
    expect(await databaseOn(de.body.id, 'fr')).toBe(false);

    const fr = await owner.http.post('/api/v1/tenants', { name: 'Paris office' });
    expect(fr.status).toBe(201);
    expect(fr.body).toMatchObject({ region: 'fr', server: servers.fr!.name });
    expect(await databaseOn(fr.body.id, 'fr')).toBe(true);

    const shown = await owner.http.get(`/api/v1/tenants/${de.body.id}`);
    expect(shown.body).toEqual(de.body);
    expect(Object.keys(shown.body).sort()).toEqual(['createdAt', 'customerId', 'id', 'name', 'plan', 'region', 'server', 'state', 'stateChangedAt', 'trialEndsAt']);
  });

  it('[TEN-2] an unknown region is a 400 and creates nothing', async () => {
    const before = await tenantCount(owner.customerId);
    const res = await owner.http.post('/api/v1/tenants', { name: 'Nowhere', region: 'us' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('unknown_region');
    expect(res.body.regions).toEqual(['fr', 'de']);
    expect(await tenantCount(owner.customerId)).toBe(before);
  });

  it('[ACC-1] a member whose e-mail is not verified cannot create a tenant', async () => {
    const unverified = await createMember(ctx, { verified: false });
    const res = await unverified.http.post('/api/v1/tenants', { name: 'Too early' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('email_not_verified');
    expect(await tenantCount(unverified.customerId)).toBe(0);
  });

  it('only owners and administrators create tenants, for their own customers', async () => {
    const collaborator = await createMember(ctx, { role: 'collaborator', customerId: owner.customerId });
    const refused = await collaborator.http.post('/api/v1/tenants', { name: 'Nope', customerId: owner.customerId });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('role_required');
    // No customer they manage: the default cannot be picked.
    expect((await collaborator.http.post('/api/v1/tenants', { name: 'Nope' })).body.code).toBe('customer_required');

    const administrator = await createMember(ctx, { role: 'administrator', customerId: owner.customerId });
    const made = await administrator.http.post('/api/v1/tenants', { name: 'By the administrator' });
    expect(made.status).toBe(201);
    expect(made.body.customerId).toBe(owner.customerId);
    // The collaborator sees the customer's tenants, but not other customers' ones.
    const seen = await collaborator.http.get('/api/v1/tenants');
    expect(seen.body.tenants.map((t: any) => t.id)).toContain(made.body.id);
    expect(seen.body.tenants.every((t: any) => t.customerId === owner.customerId)).toBe(true);

    const stranger = await createMember(ctx);
    const foreign = await stranger.http.post('/api/v1/tenants', { name: 'Not mine', customerId: owner.customerId });
    expect(foreign.status).toBe(404);
    expect((await stranger.http.get('/api/v1/tenants')).body.tenants).toEqual([]);
  });

  it('asks which customer when the member manages several, and rejects unknown fields', async () => {
    const member = await createMember(ctx);
    const second = await createMember(ctx);
    await ctx.core.db.insertInto('memberships').values({ customer_id: second.customerId, user_id: member.userId, role: 'administrator', created_at: ctx.clock.now() }).execute();
    const ambiguous = await member.http.post('/api/v1/tenants', { name: 'Which one?' });
    expect(ambiguous.status).toBe(400);
    expect(ambiguous.body.code).toBe('customer_required');
    const chosen = await member.http.post('/api/v1/tenants', { name: 'This one', customerId: second.customerId });
    expect(chosen.body.customerId).toBe(second.customerId);

    const extra = await member.http.post('/api/v1/tenants', { name: 'x', customerId: second.customerId, plan: 'free' });
    expect(extra.status).toBe(400);
    expect((await member.http.post('/api/v1/tenants', { name: '   ', customerId: second.customerId })).status).toBe(400);
    expect((await ctx.client().post('/api/v1/tenants', { name: 'anonymous' })).status).toBe(401);
  });

  it('Idempotency-Key: the same key gives one tenant, sequentially and concurrently; reused for another request it is a 409', async () => {
    const member = await createMember(ctx);
    const post = (key: string, body: Record<string, unknown>) => member.http.request('POST', '/api/v1/tenants', { body, headers: { 'idempotency-key': key } });

    const first = await post('key-1', { name: 'Once' });
    const retry = await post('key-1', { name: 'Once' });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(200);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.id).toBe(first.body.id);

    const racing = await Promise.all([post('key-2', { name: 'Raced' }), post('key-2', { name: 'Raced' }), post('key-2', { name: 'Raced' })]);
    expect(new Set(racing.map((r) => r.body.id)).size).toBe(1);
    expect(racing.map((r) => r.status).sort()).toEqual([200, 200, 201]);
    expect(await tenantCount(member.customerId)).toBe(2);

    const misuse = await post('key-1', { name: 'Something else' });
    expect(misuse.status).toBe(409);
    expect(misuse.body.code).toBe('idempotency_key_reused');

    // The key is scoped to the customer: another customer's identical key is another tenant.
    const other = await createMember(ctx);
    const theirs = await other.http.request('POST', '/api/v1/tenants', { body: { name: 'Once' }, headers: { 'idempotency-key': 'key-1' } });
    expect(theirs.status).toBe(201);
    expect(theirs.body.id).not.toBe(first.body.id);
    expect(await tenantCount(member.customerId)).toBe(2);
  });

  it('a creation that fails midway leaves nothing behind, and the claimed database goes back to the pool', async () => {
    const member = await createMember(ctx);
    const real = ctx.app.modules.fleet.databases;
    let claimed: string | null = null;
    // A crash right after the database was claimed, inside the creation transaction.
    const crashing = createTenantsModule(ctx.core, {
      fleet: {
        databases: {
          ...real,
          acquire: async (region, trx) => {
            claimed = (await real.acquire(region, trx)).id;
            throw new Error('crash after claim');
          },
        },
      },
    });
    await expect(crashing.service.create({ customerId: member.customerId, name: 'Doomed', actor: { type: 'cli' } })).rejects.toThrow('crash after claim');
    expect(claimed).not.toBeNull();
    expect(await tenantCount(member.customerId)).toBe(0);
    const pooled = await ctx.core.db.selectFrom('tenant_databases').select('state').where('id', '=', claimed!).executeTakeFirstOrThrow();
    expect(pooled.state).toBe('pooled');
    const orphans = await ctx.core.db
      .selectFrom('tenant_transitions')
      .leftJoin('tenants', 'tenants.id', 'tenant_transitions.tenant_id')
      .select('tenant_transitions.id')
      .where('tenants.id', 'is', null)
      .execute();
    expect(orphans).toEqual([]);

    // The next creation gets that pooled database.
    const next = await ctx.app.modules.tenants.service.create({ customerId: member.customerId, name: 'Next', actor: { type: 'cli' } });
    expect(next.tenant.tenant_database_id).toBe(claimed);
  });

  it('havre tenant create|list|show|suspend|resume', async () => {
    const member = await createMember(ctx);
    const created = await runCli(ctx, ['--json', 'tenant', 'create', '--customer', member.customerId, '--name', 'From the CLI', '--region', 'de']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const tenant = JSON.parse(created.stdout);
    expect(tenant).toMatchObject({ customerId: member.customerId, name: 'From the CLI', region: 'de', server: servers.de!.name, state: 'trial' });

    const list = await runCli(ctx, ['tenant', 'list', '--customer', member.customerId]);
    expect(list.stdout).toContain(tenant.id);
    expect(list.stdout).toContain('From the CLI');

    const suspended = await runCli(ctx, ['tenant', 'suspend', tenant.id, '--reason', 'letter from the customer']);
    expect(suspended.code).toBe(0);
    expect(suspended.stdout).toContain('suspended');
    const again = await runCli(ctx, ['tenant', 'suspend', tenant.id, '--reason', 'twice']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('invalid_transition');

    expect((await runCli(ctx, ['tenant', 'resume', tenant.id])).stdout).toContain('trial');
    const show = await runCli(ctx, ['tenant', 'show', tenant.id]);
    expect(show.stdout).toContain('trial → suspended  by cli: letter from the customer');
    expect(show.stdout).toContain('suspended → trial  by cli');

    const missingCustomer = await runCli(ctx, ['tenant', 'create', '--customer', '00000000-0000-0000-0000-000000000000', '--name', 'Ghost']);
    expect(missingCustomer.code).toBe(2);
    expect(missingCustomer.stderr).toContain('customer_not_found');
    expect((await runCli(ctx, ['tenant', 'show', 'nope'])).stderr).toContain('tenant_not_found');
  }, 90_000);
});
