/**
 * TEN-6: a rollout takes a complete backup of each tenant right before updating it (the backup
 * holds the old version), and does not update a tenant whose backup failed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { testRollouts, withExtraMigrations } from '../rollouts/rollouts-fixtures.ts';
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import type { BackupManifest } from './backup-writer.ts';

let ctx: TestContext;
let ok: Workspace;
let broken: Workspace;
const L = LATEST_SCHEMA_VERSION;
const MIGRATIONS = withExtraMigrations('CREATE TABLE backup_probe (n int);');

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ok = await createWorkspace(ctx, { name: 'Backed up' });
  broken = await createWorkspace(ctx, { name: 'Unbackable' });
  await createRecord(ok.owner.http, `${ok.base}/companies`, { name: 'Dupont SARL' });
});
afterAll(async () => ctx?.close());

describe('rollouts with backups', () => {
  it('[TEN-6] each tenant is backed up (complete, at its old version) just before its update; a tenant whose backup fails is not updated', async () => {
    // The broken tenant's database cannot be dumped: its role lost the right to read a table.
    await ctx.app.modules.fleet.connections.withTenant(broken.tenantDatabaseId, (c) => c.query('CREATE TABLE secret (x int); REVOKE ALL ON secret FROM CURRENT_USER'));
    const backups = ctx.app.modules.backups.service;
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, { migrations: MIGRATIONS, beforeUpgrade: (id) => backups.beforeUpgrade(id) });
    const { rollout } = await rollouts.service.create({ target: L + 1, batchSize: 10, concurrency: 1, actor: { type: 'cli' } });
    const outcome = await rollouts.service.run(rollout!.id);
    expect(outcome.counts.failed).toBe(1);

    const okBackups = await ctx.core.db.selectFrom('backups').selectAll().where('tenant_id', '=', ok.tenantId).execute();
    expect(okBackups.map((b) => [b.trigger, b.state])).toEqual([['pre_upgrade', 'complete']]);
    expect((okBackups[0]!.manifest as BackupManifest).schemaVersion).toBe(L);
    expect(await tenantQuery(ctx, ok, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: L + 1 }]);

    const brokenBackups = await ctx.core.db.selectFrom('backups').select(['trigger', 'state']).where('tenant_id', '=', broken.tenantId).execute();
    expect(brokenBackups.length).toBeGreaterThan(0);
    expect(brokenBackups.every((b) => b.trigger === 'pre_upgrade' && b.state === 'failed')).toBe(true);
    expect(await tenantQuery(ctx, broken, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: L }]);
    const item = await ctx.core.db.selectFrom('rollout_items').select(['state', 'last_error']).where('tenant_database_id', '=', broken.tenantDatabaseId).executeTakeFirstOrThrow();
    expect(item.state).toBe('failed');
    expect(item.last_error).toMatch(/backup/);
  });
});
