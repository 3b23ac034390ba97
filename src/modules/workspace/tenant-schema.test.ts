/**
 * The workspace schema in tenant databases (TEN-6): new tenants get the latest version; an upgrade
 * is all-or-nothing and applies each migration exactly once, even when two upgraders race.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { LATEST_SCHEMA_VERSION, loadTenantMigrations, parseMigration, WORKSPACE_MIGRATIONS, type TenantMigration } from './tenant-schema.ts';
import { createRecord, createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

/** The shipped migrations plus `extra` steps after them (a future release, for tests). */
function withExtra(...sql: string[]): TenantMigration[] {
  return [...WORKSPACE_MIGRATIONS, ...sql.map((text, i) => parseMigration(LATEST_SCHEMA_VERSION + i + 1, `test_${i + 1}`, text))];
}

async function controlPlaneVersion(tenantDatabaseId: string): Promise<number> {
  const row = await ctx.core.db.selectFrom('tenant_databases').select('schema_version').where('id', '=', tenantDatabaseId).executeTakeFirstOrThrow();
  return row.schema_version;
}

describe('workspace schema versions', () => {
  it('[TEN-6] a new tenant gets the latest schema, recorded inside its database and in the control plane', async () => {
    expect(LATEST_SCHEMA_VERSION).toBeGreaterThanOrEqual(3);
    expect(await tenantQuery(ctx, ws, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: LATEST_SCHEMA_VERSION }]);
    const history = await tenantQuery(ctx, ws, 'SELECT version, name FROM havre_schema_history ORDER BY version');
    expect(history.map((h) => h.version)).toEqual(WORKSPACE_MIGRATIONS.map((m) => m.version));
    expect(await controlPlaneVersion(ws.tenantDatabaseId)).toBe(LATEST_SCHEMA_VERSION);
    // The tables belong to the tenant's role, not to the server's admin.
    const owners = await tenantQuery(ctx, ws, "SELECT DISTINCT tableowner = current_user AS mine FROM pg_tables WHERE schemaname = 'public'");
    expect(owners).toEqual([{ mine: true }]);
  });

  it('[TEN-6] a failing migration leaves the tenant intact on its old version: data, schema and history unchanged', async () => {
    const company = await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Intact SARL' });
    const migrations = withExtra(`ALTER TABLE companies ADD COLUMN rating int; UPDATE companies SET name = 'changed'; SELECT 1 / 0;`);
    await expect(ctx.app.modules.workspace.upgrade(ws.tenantDatabaseId, { migrations })).rejects.toThrow(/division by zero/);
    expect(await tenantQuery(ctx, ws, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: LATEST_SCHEMA_VERSION }]);
    expect(await tenantQuery(ctx, ws, "SELECT column_name FROM information_schema.columns WHERE table_name = 'companies' AND column_name = 'rating'")).toEqual([]);
    expect((await ws.owner.http.get(`${ws.base}/companies/${company.id}`)).body.name).toBe('Intact SARL');
    expect(await tenantQuery(ctx, ws, 'SELECT max(version) AS v FROM havre_schema_history')).toEqual([{ v: LATEST_SCHEMA_VERSION }]);
    expect(await controlPlaneVersion(ws.tenantDatabaseId)).toBe(LATEST_SCHEMA_VERSION);
    // The workspace still works.
    expect((await ws.owner.http.get(`${ws.base}/companies`)).status).toBe(200);
  });

  it('[TEN-6] two upgraders racing on one tenant apply each migration exactly once', async () => {
    const t = await createWorkspace(ctx);
    const migrations = withExtra(
      `CREATE TABLE upgrade_probe (n int); INSERT INTO upgrade_probe VALUES (1); SELECT pg_sleep(0.3);`,
      `INSERT INTO upgrade_probe VALUES (2);`,
    );
    const results = await Promise.all([1, 2, 3].map(() => ctx.app.modules.workspace.upgrade(t.tenantDatabaseId, { migrations })));
    const applied = results.flatMap((r) => r.applied).sort();
    expect(applied).toEqual([LATEST_SCHEMA_VERSION + 1, LATEST_SCHEMA_VERSION + 2]);
    expect(await tenantQuery(ctx, t, 'SELECT n FROM upgrade_probe ORDER BY n')).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await tenantQuery(ctx, t, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: LATEST_SCHEMA_VERSION + 2 }]);
    expect(await controlPlaneVersion(t.tenantDatabaseId)).toBe(LATEST_SCHEMA_VERSION + 2);
    // Again: nothing left to do, nothing applied.
    expect((await ctx.app.modules.workspace.upgrade(t.tenantDatabaseId, { migrations })).applied).toEqual([]);
  });

  it('a tenant below the oldest served version is upgraded on its first request', async () => {
    const t = await createWorkspace(ctx);
    // Simulate a database prepared by an older Havre: version 2, no attachments table yet.
    await tenantQuery(ctx, t, 'DROP TABLE attachments; DELETE FROM havre_schema_history WHERE version = 3; UPDATE havre_meta SET schema_version = 2');
    await ctx.core.db.updateTable('tenant_databases').set({ schema_version: 2 }).where('id', '=', t.tenantDatabaseId).execute();
    ctx.core.authCache.forgetAll();
    expect((await t.owner.http.get(`${t.base}/companies`)).status).toBe(200);
    expect(await tenantQuery(ctx, t, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: LATEST_SCHEMA_VERSION }]);
    expect(await tenantQuery(ctx, t, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'attachments'")).toEqual([{ n: 1 }]);
  });

  it('the loader refuses gaps in numbering and statements that cannot run in a transaction', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'havre-migrations-'));
    await writeFile(path.join(dir, '0001_a.sql'), 'CREATE TABLE a (id int);');
    await writeFile(path.join(dir, '0003_c.sql'), 'CREATE TABLE c (id int);');
    expect(() => loadTenantMigrations(dir)).toThrow(/without gaps/);
    expect(() => parseMigration(9, 'idx', 'CREATE INDEX CONCURRENTLY i ON a (id);')).toThrow(/cannot run inside a transaction/);
    expect(() => parseMigration(9, 'tx', 'BEGIN;\nCREATE TABLE x (id int);\nCOMMIT;')).toThrow(/own transaction/);
    expect(parseMigration(9, 'big', '-- havre:interrupts-service\nALTER TABLE a ALTER COLUMN id TYPE bigint;').interruptsService).toBe(true);
    expect(WORKSPACE_MIGRATIONS.every((m) => !m.interruptsService)).toBe(true);
  });
});
