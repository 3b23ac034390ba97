import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

describe('withTenantAsAdmin', () => {
  it('[TEN-1] acts as the tenant role (and only sees what it sees), even when that role may not log in', async () => {
    const { connections } = ctx.app.modules.fleet;
    const role = await connections.withTenant(ws.tenantDatabaseId, async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    expect(await connections.withTenantAsAdmin(ws.tenantDatabaseId, async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u)).toBe(role);
    // As the tenant role: no superuser powers.
    await expect(connections.withTenantAsAdmin(ws.tenantDatabaseId, (c) => c.query('CREATE ROLE intruder'))).rejects.toThrow(/permission denied/);
    const server = ctx.regionServers.find((s) => s.region === 'fr')!;
    const pg = (await import('pg')).default;
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`ALTER ROLE ${role} NOLOGIN`);
    await connections.close(ws.tenantDatabaseId);
    await expect(connections.withTenant(ws.tenantDatabaseId, (c) => c.query('SELECT 1'))).rejects.toThrow();
    expect(await connections.withTenantAsAdmin(ws.tenantDatabaseId, async (c) => (await c.query('SELECT count(*)::int AS n FROM companies')).rows[0].n)).toBe(0);
    await admin.query(`ALTER ROLE ${role} LOGIN`);
    await admin.end();
  });
});

describe('scratch databases', () => {
  it('[BKP-4] verification scratch databases are made away from the avoided server, and a sweep leaves young ones alone', async () => {
    const { scratch } = ctx.app.modules.fleet;
    const servers = await ctx.app.modules.fleet.servers.list();
    const fr = servers.find((s) => s.region === 'fr')!;
    const made = await scratch.create({ avoidServerId: fr.id });
    expect(made.serverId).not.toBe(fr.id);
    // A fresh one survives a sweep of leftovers older than an hour (other test files share these
    // servers, so no sweep with a later cut-off here: it would drop their scratch databases too).
    expect(await scratch.sweep(new Date(Date.now() - 3_600_000))).toBe(0);
    await made.drop();
    await made.drop(); // dropping again is harmless
  });
});
