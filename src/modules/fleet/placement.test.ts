/** TEN-2: a tenant database is placed in the chosen region, on its least-loaded server. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { AppError } from '../../lib/errors.ts';
import { acquireDatabase, adminUrlOf, fleetOf, registerRegionServers } from './fleet-test-helpers.ts';
import type { TenantDatabaseView } from './index.ts';

const contexts: TestContext[] = [];
const created: [TestContext, TenantDatabaseView][] = [];

async function context(): Promise<TestContext> {
  const ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0 } } });
  contexts.push(ctx);
  return ctx;
}

async function acquire(ctx: TestContext, region: string): Promise<TenantDatabaseView> {
  const db = await acquireDatabase(ctx, region);
  created.push([ctx, db]);
  return db;
}

afterAll(async () => {
  await Promise.all(created.map(([ctx, db]) => fleetOf(ctx).databases.drop(db.id)));
  for (const ctx of contexts) {
    await fleetOf(ctx).connections.closeAll();
    await ctx.close();
  }
});

describe('placement', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await context();
    await registerRegionServers(ctx);
  });

  it('[TEN-2] places a tenant database on a server of the requested region', async () => {
    const fr = await acquire(ctx, 'fr');
    const de = await acquire(ctx, 'de');
    expect(fr).toMatchObject({ region: 'fr', serverName: 'test-fr' });
    expect(de).toMatchObject({ region: 'de', serverName: 'test-de' });
    // The database really is on that server.
    const { withClient } = await import('./fleet-test-helpers.ts');
    const onDe = await withClient(adminUrlOf(ctx, 'de'), async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [de.databaseName])).rowCount);
    const onFr = await withClient(adminUrlOf(ctx, 'fr'), async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [de.databaseName])).rowCount);
    expect([onDe, onFr]).toEqual([1, 0]);
  });

  it('[TEN-2] refuses an unknown region with 400 unknown_region, and a region without server with 503', async () => {
    const err = await ctx.core.db.transaction().execute((trx) => fleetOf(ctx).databases.acquire('us', trx)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect(err).toMatchObject({ status: 400, code: 'unknown_region' });
    const addErr = await fleetOf(ctx).servers.add({ region: 'us', adminUrl: adminUrlOf(ctx, 'fr') }).catch((e: unknown) => e);
    expect(addErr).toMatchObject({ status: 400, code: 'unknown_region' });
  });

  it('[TEN-2] reports 503 no_server_in_region when a configured region has no server', async () => {
    const other = await context();
    const err = await other.core.db.transaction().execute((trx) => fleetOf(other).databases.acquire('fr', trx)).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'no_server_in_region' });
  });

  it('[TEN-2] picks the least-loaded server of the region (assigned / max tenants), and skips full ones', async () => {
    // A control plane of its own, where both clusters are registered in region fr.
    const other = await context();
    const fleet = fleetOf(other);
    await fleet.servers.add({ name: 'a-small', region: 'fr', adminUrl: adminUrlOf(other, 'fr'), maxTenants: 4 });
    await fleet.servers.add({ name: 'b-large', region: 'fr', adminUrl: adminUrlOf(other, 'de'), maxTenants: 12 });
    const placed: string[] = [];
    for (let i = 0; i < 8; i++) placed.push((await acquire(other, 'fr')).serverName);
    // Loads after each step: ties go to the first name; a at 1/4 then b until 3/12, …
    expect(placed).toEqual(['a-small', 'b-large', 'b-large', 'b-large', 'a-small', 'b-large', 'b-large', 'b-large']);
    const list = await fleet.servers.list();
    expect(list.map((s) => [s.name, s.assignedDatabases])).toEqual([
      ['a-small', 2],
      ['b-large', 6],
    ]);
    // Fill both: a full server gets nothing more; a full region answers 503 region_full.
    const next: string[] = [];
    for (let i = 0; i < 8; i++) next.push((await acquire(other, 'fr')).serverName);
    expect(next).toEqual(['a-small', 'b-large', 'b-large', 'b-large', 'a-small', 'b-large', 'b-large', 'b-large']);
    const err = await acquireDatabase(other, 'fr').catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 503, code: 'region_full' });
  });
});
