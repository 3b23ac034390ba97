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
