/**
 * Tenant creation under load: no provisioning inside the creation transaction (no deadlock of the
 * control-plane pool), and server capacity (max_tenants) is never exceeded under concurrency.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember } from '../../../test/factories.ts';

const contexts: TestContext[] = [];
afterAll(async () => {
  for (const ctx of contexts) await ctx.close();
});

async function context(): Promise<TestContext> {
  const ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0 } } });
  contexts.push(ctx);
  return ctx;
}

describe('tenant creation under load', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await context();
  });

  it('[TEN-2] 12 concurrent creations with an empty warm pool all succeed, and the API still answers', async () => {
    for (const s of ctx.regionServers) await ctx.app.modules.fleet.servers.add({ name: `load-${s.region}`, region: s.region, adminUrl: s.adminUrl });
    const member = await createMember(ctx);
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => member.http.post('/api/v1/tenants', { name: `Load ${i}` })));
    expect(results.map((r) => r.status)).toEqual(Array(12).fill(201));
    expect(Date.now() - started).toBeLessThan(30_000);
    const list = await member.http.get('/api/v1/tenants');
    expect(list.status).toBe(200);
    expect(new Set(results.map((r) => r.body.databaseId ?? r.body.id)).size).toBe(12);
  }, 60_000);

  it('[TEN-2] a server with max 2 tenants takes exactly 2 of 5 concurrent creations; the others get a 503', async () => {
    const small = await context();
    const fr = small.regionServers.find((s) => s.region === 'fr')!;
    const server = await small.app.modules.fleet.servers.add({ name: 'tiny', region: 'fr', adminUrl: fr.adminUrl, maxTenants: 2 });
    const member = await createMember(small);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => member.http.post('/api/v1/tenants', { name: `Small ${i}`, region: 'fr' })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 503, 503, 503]);
    for (const r of results.filter((x) => x.status === 503)) expect(['region_full', 'no_capacity']).toContain(r.body.code);
    const [listed] = (await small.app.modules.fleet.servers.list()).filter((s) => s.id === server.id);
    expect(listed!.assignedDatabases).toBe(2);
    const total = await small.core.db.selectFrom('tenant_databases').select('id').where('server_id', '=', server.id).where('state', '!=', 'dropped').execute();
    expect(total.length).toBe(2);
  }, 60_000);
});
