/**
 * Connections to tenant databases: per-tenant pools with idle eviction and ONE global cap, so one
 * node can serve 1,000 tenants of one server without exhausting the server's connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { adminUrlOf, fleetOf, withClient } from './fleet-test-helpers.ts';
import { tenantTargetResolver, type ServerView } from './index.ts';
import { createAdminConnections } from './admin-connections.ts';
import { createTenantConnections } from './connections.ts';

// 1,000 takes ~100 s on 2 cores (mostly CREATE DATABASE): the suite runs 300, `npm run bench` runs 1,000.
const TENANTS = 300;
const GLOBAL_MAX = 40;

let ctx: TestContext;
let server: ServerView;

beforeAll(async () => {
  ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0, connections: { perTenantMax: 2, globalMax: GLOBAL_MAX, idleMs: 5_000 } } } });
  server = await fleetOf(ctx).servers.add({ name: 'crowded', region: 'fr', adminUrl: adminUrlOf(ctx, 'fr'), maxTenants: 5_000 });
});

afterAll(async () => {
  if (!ctx) return;
  await fleetOf(ctx).connections.closeAll();
  // The 1,000 databases are left to the harness, which deletes the whole cluster at the end of
  // the run (dropping them one by one would only slow the suite down).
  await ctx.close();
});

describe('tenant connections', () => {
  it(`serves ${TENANTS} tenant databases of one server with at most ${GLOBAL_MAX} connections open`, { timeout: 300_000 }, async () => {
    const fleet = fleetOf(ctx);
    const t0 = Date.now();
    expect(await fleet.pool.refill(server.id, { target: TENANTS, concurrency: 4 })).toBe(TENANTS);
    const createMs = Date.now() - t0;
    const rows = await ctx.core.db.selectFrom('tenant_databases').select(['id', 'role_name']).where('server_id', '=', server.id).where('state', '=', 'pooled').execute();
    expect(rows).toHaveLength(TENANTS);
    const roles = rows.map((r) => r.role_name);

    // Watch the server: tenant-role backends of these tenants, sampled while the queries run.
    let peak = 0;
    let samples = 0;
    let watching = true;
    const watcher = withClient(adminUrlOf(ctx, 'fr'), async (c) => {
      while (watching) {
        const { rows: r } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1)', [roles]);
        peak = Math.max(peak, r[0]!.n);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });

    const t1 = Date.now();
    let peakOpen = 0;
    let next = 0;
    const results: number[] = [];
    // 100 requests in flight at a time, over all tenants, twice (the second round hits evicted pools).
    const order = [...rows, ...rows];
    const worker = async () => {
      while (next < order.length) {
        const row = order[next++]!;
        const value = await fleet.connections.withTenant(row.id, async (c) => {
          peakOpen = Math.max(peakOpen, fleet.connections.stats().total);
          const { rows: r } = await c.query<{ v: number }>('SELECT 1 AS v FROM havre_meta WHERE schema_version >= 0');
          return r[0]!.v;
        });
        results.push(value);
      }
    };
    await Promise.all(Array.from({ length: 100 }, worker));
    const queryMs = Date.now() - t1;
    watching = false;
    await watcher;

    expect(results).toHaveLength(order.length);
    expect(results.every((v) => v === 1)).toBe(true);
    expect(peakOpen).toBeLessThanOrEqual(GLOBAL_MAX);
    expect(peak).toBeLessThanOrEqual(GLOBAL_MAX);
    expect(peak).toBeGreaterThan(GLOBAL_MAX / 2); // the watcher did see the load
    expect(samples).toBeGreaterThan(10);
    console.info(`[fleet] ${TENANTS} tenant databases created in ${createMs} ms; ${order.length} queries in ${queryMs} ms; peak backends ${peak} (cap ${GLOBAL_MAX}), ${samples} samples`);
  });

  it('at the cap with nothing idle, a request waits and then fails with 503 tenant_connections_exhausted', async () => {
    const rows = await ctx.core.db.selectFrom('tenant_databases').select('id').where('server_id', '=', server.id).limit(3).execute();
    // A small manager over the same tenant databases: cap 1, short wait.
    const admin = createAdminConnections({ secrets: ctx.core.secrets });
    const small = createTenantConnections({ perTenantMax: 1, globalMax: 1, idleMs: 60_000, acquireTimeoutMs: 300 }, tenantTargetResolver({ db: ctx.core.db, secrets: ctx.core.secrets, admin }));
    try {
      let release!: () => void;
      const held = small.withTenant(rows[0]!.id, () => new Promise<void>((resolve) => (release = resolve)));
      await expect.poll(() => small.stats().total).toBe(1);
      await expect(small.withTenant(rows[1]!.id, (c) => c.query('SELECT 1'))).rejects.toMatchObject({ status: 503, code: 'tenant_connections_exhausted' });
      release();
      await held;
      // Now the only connection is idle: another tenant evicts it (least recently used) and proceeds.
      expect(small.stats()).toMatchObject({ total: 1, idle: 1 });
      await small.withTenant(rows[1]!.id, (c) => c.query('SELECT 1'));
      await small.withTenant(rows[2]!.id, (c) => c.query('SELECT 1'));
      expect(small.stats().total).toBe(1);
    } finally {
      await small.closeAll();
      await admin.closeAll();
    }
  });
});
