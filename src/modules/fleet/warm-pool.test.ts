/** The warm pool: handout, background refill, rollback safety, and the sweeper of crash leftovers. */
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { acquireDatabase, adminUrlOf, dropAllAndClose, fleetOf, registerRegionServers, withClient } from './fleet-test-helpers.ts';
import type { ServerView } from './index.ts';
import { CREATING_LEFTOVER_MS } from './provisioner.ts';
import { newTenantDatabaseNames } from './sql-names.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;

beforeAll(async () => {
  ctx = await createTestContext({ config: { tenants: { warmPoolSize: 2 } } });
  servers = await registerRegionServers(ctx);
});

afterAll(() => dropAllAndClose(ctx));

const countByState = async (serverId: string, state: string) =>
  Number((await ctx.core.db.selectFrom('tenant_databases').select((eb) => eb.fn.countAll<number>().as('n')).where('server_id', '=', serverId).where('state', '=', state as never).executeTakeFirstOrThrow()).n);

const databaseExists = (region: string, name: string) =>
  withClient(adminUrlOf(ctx, region), async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1);
const roleExists = (region: string, name: string) =>
  withClient(adminUrlOf(ctx, region), async (c) => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name])).rowCount === 1);

describe('warm pool', () => {
  it('refill tops up every server to warmPoolSize, once (a second pass creates nothing)', async () => {
    const fleet = fleetOf(ctx);
    expect(await fleet.pool.refill()).toBe(4);
    expect(await fleet.pool.refill()).toBe(0);
    const list = await fleet.servers.list();
    expect(list.map((s) => s.pooledDatabases)).toEqual([2, 2]);
  });

  it('hands out a pooled database, and the background loop refills the pool', async () => {
    const fleet = fleetOf(ctx);
    const pooledBefore = await ctx.core.db.selectFrom('tenant_databases').select('id').where('server_id', '=', servers.fr!.id).where('state', '=', 'pooled').orderBy('created_at').execute();
    const started = Date.now();
    const got = await acquireDatabase(ctx, 'fr');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(pooledBefore.map((r) => r.id)).toContain(got.id);
    expect(await countByState(servers.fr!.id, 'pooled')).toBe(1);
    expect(await fleet.connections.withTenant(got.id, async (c) => (await c.query('SELECT schema_version FROM havre_meta')).rows)).toEqual([{ schema_version: LATEST_SCHEMA_VERSION }]);

    const stop = fleet.start!();
    try {
      await expect.poll(() => countByState(servers.fr!.id, 'pooled'), { timeout: 10_000, interval: 100 }).toBe(2);
    } finally {
      await stop();
    }
    expect(await countByState(servers.fr!.id, 'assigned')).toBe(1);
  });

  it('a rolled-back transaction leaves the database pooled', async () => {
    const fleet = fleetOf(ctx);
    let claimed = '';
    await expect(
      ctx.core.db.transaction().execute(async (trx) => {
        claimed = (await fleet.databases.acquire('de', trx)).id;
        throw new Error('the tenant creation failed after the claim');
      }),
    ).rejects.toThrow(/failed after the claim/);
    const row = await ctx.core.db.selectFrom('tenant_databases').select(['state', 'assigned_at']).where('id', '=', claimed).executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'pooled', assigned_at: null });
    expect(await countByState(servers.de!.id, 'pooled')).toBe(2);
  });

  it('concurrent acquisitions get distinct databases (SKIP LOCKED); with the pool dry, acquire throws no_pooled_database and ensureAvailable provisions outside the transaction', async () => {
    const got = await Promise.all(Array.from({ length: 4 }, () => acquireDatabase(ctx, 'de')));
    expect(new Set(got.map((g) => g.id)).size).toBe(4);
    expect(got.every((g) => g.region === 'de')).toBe(true);
    expect(await countByState(servers.de!.id, 'assigned')).toBe(4);
    expect(await countByState(servers.de!.id, 'pooled')).toBe(0);
  });

  it('the sweeper drops the leftovers of a provisioning that crashed half-way and deletes its row', async () => {
    const fleet = fleetOf(ctx);
    // Simulate a crash: the row was committed as `creating`, the role and database were created,
    // and the process died before the setup finished.
    const names = newTenantDatabaseNames();
    const id = crypto.randomUUID();
    const now = ctx.clock.now();
    await ctx.core.db
      .insertInto('tenant_databases')
      .values({ id, server_id: servers.fr!.id, database_name: names.databaseName, role_name: names.roleName, role_password_sealed: ctx.core.secrets.seal(names.password, `tenant-db:${id}`), state: 'creating', created_at: now, updated_at: now, assigned_at: null, dropped_at: null, schema_version: 0 })
      .execute();
    await withClient(adminUrlOf(ctx, 'fr'), async (c) => {
      await c.query(`CREATE ROLE ${names.roleName} LOGIN NOINHERIT`);
      await c.query(`CREATE DATABASE ${names.databaseName} OWNER ${names.roleName} TEMPLATE template0`);
    });
    // Too recent: it may still be in progress on another node.
    expect(await fleet.pool.sweep()).toBe(0);
    expect(await databaseExists('fr', names.databaseName)).toBe(true);
    // A refill does not count it as ready.
    expect(await fleet.databases.get(id)).not.toBeNull();

    ctx.clock.advance(CREATING_LEFTOVER_MS + 1_000);
    expect(await fleet.pool.sweep()).toBe(1);
    expect(await databaseExists('fr', names.databaseName)).toBe(false);
    expect(await roleExists('fr', names.roleName)).toBe(false);
    expect(await ctx.core.db.selectFrom('tenant_databases').select('id').where('id', '=', id).executeTakeFirst()).toBeUndefined();
  });

  it('drop removes an assigned database and its role (dropping → dropped)', async () => {
    const fleet = fleetOf(ctx);
    const got = await acquireDatabase(ctx, 'fr');
    await fleet.connections.withTenant(got.id, (c) => c.query('SELECT 1'));
    expect(await fleet.databases.drop(got.id)).toBe(true);
    expect(await databaseExists('fr', got.databaseName)).toBe(false);
    expect(await roleExists('fr', got.roleName)).toBe(false);
    expect((await ctx.core.db.selectFrom('tenant_databases').select('state').where('id', '=', got.id).executeTakeFirstOrThrow()).state).toBe('dropped');
    expect(await fleet.databases.drop(got.id)).toBe(false);
    await expect(fleet.connections.withTenant(got.id, (c) => c.query('SELECT 1'))).rejects.toMatchObject({ status: 404, code: 'tenant_database_not_found' });
  });
});
