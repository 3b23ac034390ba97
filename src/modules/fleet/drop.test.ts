/**
 * Dropping tenant databases whatever the tenants did (TEN-1: one tenant cannot block the removal
 * of another), a sweeper that one bad row never stops, and provisioning heartbeats.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import type { Clock } from '../../lib/clock.ts';
import { createAdminConnections, type AdminConnections } from './admin-connections.ts';
import { acquireDatabase, adminUrlOf, dropAllAndClose, fleetOf, registerRegionServers, urlAs, withClient } from './fleet-test-helpers.ts';
import type { ServerView, TenantDatabaseView } from './index.ts';
import { CREATING_LEFTOVER_MS, createProvisioner, tenantPasswordContext } from './provisioner.ts';
import { newTenantDatabaseNames } from './sql-names.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;
let frUrl: string;

beforeAll(async () => {
  ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0 } } });
  servers = await registerRegionServers(ctx);
  frUrl = adminUrlOf(ctx, 'fr');
});

afterAll(() => dropAllAndClose(ctx));

const passwordOf = async (id: string) =>
  ctx.core.secrets.open((await ctx.core.db.selectFrom('tenant_databases').select('role_password_sealed').where('id', '=', id).executeTakeFirstOrThrow()).role_password_sealed, tenantPasswordContext(id));
const asTenant = async <T>(t: TenantDatabaseView, fn: (c: import('pg').Client) => Promise<T>) => withClient(urlAs(frUrl, t.roleName, await passwordOf(t.id), t.databaseName), fn);
const onServer = (t: { databaseName: string; roleName: string }) =>
  withClient(frUrl, async (c) => (await c.query('SELECT (SELECT count(*) FROM pg_database WHERE datname = $1)::int AS db, (SELECT count(*) FROM pg_roles WHERE rolname = $2)::int AS role', [t.databaseName, t.roleName])).rows[0]);
const stateOf = async (id: string) => (await ctx.core.db.selectFrom('tenant_databases').select('state').where('id', '=', id).executeTakeFirst())?.state;

async function insertRow(state: 'creating' | 'dropping', names = newTenantDatabaseNames()) {
  const id = crypto.randomUUID();
  const now = ctx.clock.now();
  await ctx.core.db
    .insertInto('tenant_databases')
    .values({ id, server_id: servers.fr!.id, database_name: names.databaseName, role_name: names.roleName, role_password_sealed: ctx.core.secrets.seal(names.password, tenantPasswordContext(id)), state, created_at: now, updated_at: now, assigned_at: null, dropped_at: null, schema_version: 0 })
    .execute();
  return { id, ...names };
}

describe('dropping tenant databases', () => {
  it('[TEN-1] a tenant that grants rights to another tenant role cannot block dropping that other tenant', async () => {
    const fleet = fleetOf(ctx);
    const a = await acquireDatabase(ctx, 'fr');
    const b = await acquireDatabase(ctx, 'fr');
    await asTenant(a, async (c) => {
      await c.query('CREATE TABLE t (v int); INSERT INTO t VALUES (1)');
      await c.query(`GRANT SELECT ON t TO ${b.roleName}`); // a shared dependency on B's role, inside A's database
      await c.query(`CREATE SCHEMA s; GRANT USAGE ON SCHEMA s TO ${b.roleName}`);
    });
    expect(await fleet.databases.drop(b.id)).toBe(true);
    expect(await onServer(b)).toEqual({ db: 0, role: 0 });
    expect(await stateOf(b.id)).toBe('dropped');
    // A's data is untouched.
    expect(await fleet.connections.withTenant(a.id, async (c) => (await c.query('SELECT v FROM t')).rows)).toEqual([{ v: 1 }]);
  });

  it('the sweeper cleans every leftover even when one of them cannot be cleaned, and the background loop still refills', async () => {
    const fleet = fleetOf(ctx);
    // A `dropping` leftover whose role owns a database Havre does not know: DROP ROLE fails.
    const stuck = await insertRow('dropping');
    await withClient(frUrl, async (c) => {
      await c.query(`CREATE ROLE ${stuck.roleName} NOLOGIN`);
      await c.query(`CREATE DATABASE x_${stuck.databaseName} OWNER ${stuck.roleName}`);
    });
    const crashed = await insertRow('creating');
    await withClient(frUrl, (c) => c.query(`CREATE ROLE ${crashed.roleName} NOLOGIN`));
    ctx.clock.advance(CREATING_LEFTOVER_MS + 1_000);
    try {
      expect(await fleet.pool.sweep()).toBe(1);
      expect(await stateOf(crashed.id)).toBeUndefined();
      expect(await onServer(crashed)).toEqual({ db: 0, role: 0 });
      expect(await stateOf(stuck.id)).toBe('dropping');
      // The maintenance loop goes on refilling although the sweep keeps failing on that row.
      ctx.clock.advance(CREATING_LEFTOVER_MS + 1_000);
      expect(await fleet.pool.refill(servers.fr!.id, { target: 1 })).toBe(1);
    } finally {
      await withClient(frUrl, async (c) => {
        await c.query(`DROP DATABASE x_${stuck.databaseName}`);
        await c.query(`DROP ROLE ${stuck.roleName}`);
      });
    }
    ctx.clock.advance(CREATING_LEFTOVER_MS + 1_000);
    expect(await fleet.pool.sweep()).toBe(1);
    expect(await stateOf(stuck.id)).toBe('dropped');
  });

  it('a slow provisioning keeps its row alive (heartbeat): the sweeper only takes abandoned ones', async () => {
    // Every reading of this clock is 3 minutes later than the previous one: without heartbeats,
    // the row would look abandoned by the time the database is set up.
    let t = ctx.clock.now().getTime();
    const slowClock: Clock = { now: () => new Date((t += 3 * 60_000)) };
    const realAdmin = createAdminConnections({ secrets: ctx.core.secrets });
    const swept: number[] = [];
    const admin: AdminConnections = {
      ...realAdmin,
      adminUrlFor: (server, database) => {
        // Called just before the last step (setup inside the new database): a sweeper passes now.
        void provisioner.sweep(server).then((n) => swept.push(n));
        return realAdmin.adminUrlFor(server, database);
      },
    };
    const provisioner = createProvisioner({ db: ctx.core.db, clock: slowClock, secrets: ctx.core.secrets, admin, roleConnectionLimit: 5 });
    const server = (await ctx.core.db.selectFrom('database_servers').selectAll().where('id', '=', servers.fr!.id).executeTakeFirstOrThrow());
    try {
      const row = await provisioner.provision(server);
      expect(row?.state).toBe('pooled');
      await expect.poll(() => swept.length).toBe(1);
      expect(swept).toEqual([0]);
      expect(await onServer({ databaseName: row!.database_name, roleName: row!.role_name })).toEqual({ db: 1, role: 1 });
      expect(await provisioner.drop(server, row!.id)).toBe(true);
    } finally {
      await realAdmin.closeAll();
    }
  });
});
