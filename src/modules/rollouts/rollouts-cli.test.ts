/**
 * `havre rollout` as an operator runs it (a child process, the real workspace migrations): nothing
 * to do; then tenant databases made by an older Havre (schema version 2) brought to the latest,
 * with a failing tenant reported and a non-zero exit; status, report and defer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createMetrics } from '../../http/metrics.ts';
import { createFleetModule, type FleetModule, type ServerView } from '../fleet/index.ts';
import { LATEST_SCHEMA_VERSION, upgradeTenantSchema, WORKSPACE_MIGRATIONS } from '../workspace/tenant-schema.ts';
import { createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { EXIT_TENANTS_FAILED } from './rollouts-cli.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;
let oldFleet: FleetModule;

beforeAll(async () => {
  ctx = await createTestContext();
  // A fleet as an older Havre had it: new databases get the workspace schema up to version 2 only.
  // (Its own metrics registry: the app's fleet already registered the fleet's metrics on the core's.)
  oldFleet = createFleetModule({ ...ctx.core, metrics: createMetrics() }, { initializeDatabase: async (client) => (await upgradeTenantSchema(client, WORKSPACE_MIGRATIONS, 2, { now: ctx.clock.now() })).to });
});
afterAll(async () => {
  await oldFleet?.connections.closeAll();
  await ctx?.close();
});

async function version(databaseId: string): Promise<{ inside: number; recorded: number }> {
  const inside = await ctx.app.modules.fleet.connections.withTenant(databaseId, async (c) => (await c.query('SELECT schema_version FROM havre_meta')).rows[0].schema_version as number);
  const recorded = (await ctx.core.db.selectFrom('tenant_databases').select('schema_version').where('id', '=', databaseId).executeTakeFirstOrThrow()).schema_version;
  return { inside, recorded };
}

describe('havre rollout', () => {
  it('[TEN-6] says there is nothing to do when every tenant database is at the latest version', async () => {
    const r = await runCli(ctx, ['rollout']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`nothing to do: every tenant database is at version ${LATEST_SCHEMA_VERSION} or above`);
    const status = await runCli(ctx, ['--json', 'rollout', 'status']);
    expect(JSON.parse(status.stdout)).toEqual([]);
  });

  it('[TEN-6] upgrades tenants of an older version to the latest, reports a failed tenant by name with a non-zero exit, and finishes after the fix', async () => {
    servers = await registerServers(ctx);
    expect(await oldFleet.pool.refill(servers.fr!.id, { target: 2 })).toBe(2);
    // A customer's tenant on one of those version-2 databases.
    const ws: Workspace = await createWorkspace(ctx, { name: 'Vieux Port' });
    expect(await version(ws.tenantDatabaseId)).toEqual({ inside: 2, recorded: 2 });
    const pooled = await ctx.core.db.selectFrom('tenant_databases').select('id').where('state', '=', 'pooled').executeTakeFirstOrThrow();
    // This tenant made a table of the name the next migration creates: its update fails.
    await tenantQuery(ctx, ws, 'CREATE TABLE attachments (mine text)');

    const failed = await runCli(ctx, ['rollout', '--batch', '1', '--concurrency', '1']);
    expect(failed.code, failed.stderr).toBe(EXIT_TENANTS_FAILED);
    expect(failed.stdout).toMatch(/rollout [0-9a-f-]{36} to version 3 created/);
    expect(failed.stdout).toContain('batch 1: 1/2 done, 0 failed, 1 pending');
    expect(failed.stdout).toContain('finished with 1 failed tenant(s); they stay intact on their old version');
    expect(failed.stdout).toContain(`FAILED tenant Vieux Port (${ws.tenantId}) after 3 attempt(s): 42P07: relation "attachments" already exists`);
    expect(await version(ws.tenantDatabaseId)).toEqual({ inside: 2, recorded: 2 });
    expect(await version(pooled.id)).toEqual({ inside: LATEST_SCHEMA_VERSION, recorded: LATEST_SCHEMA_VERSION });

    await tenantQuery(ctx, ws, 'DROP TABLE attachments');
    const fixed = await runCli(ctx, ['rollout']);
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain(`finished: every tenant database is at version ${LATEST_SCHEMA_VERSION}.`);
    expect(await version(ws.tenantDatabaseId)).toEqual({ inside: LATEST_SCHEMA_VERSION, recorded: LATEST_SCHEMA_VERSION });
    const history = await tenantQuery(ctx, ws, 'SELECT version FROM havre_schema_history ORDER BY version');
    expect(history.map((h) => h.version)).toEqual([1, 2, 3]);

    const status = JSON.parse((await runCli(ctx, ['--json', 'rollout', 'status'])).stdout);
    expect(status.map((r: any) => [r.targetVersion, r.state, r.counts.done, r.counts.failed])).toEqual([
      [LATEST_SCHEMA_VERSION, 'succeeded', 1, 0],
      [LATEST_SCHEMA_VERSION, 'failed', 1, 1],
    ]);
    const one = await runCli(ctx, ['rollout', 'status', status[1].id]);
    expect(one.stdout).toContain(`FAILED ${ws.tenantId} Vieux Port after 3 attempt(s)`);
    const report = JSON.parse((await runCli(ctx, ['--json', 'rollout', 'report', String(LATEST_SCHEMA_VERSION)])).stdout);
    expect(report.tenants).toEqual([expect.objectContaining({ tenantId: ws.tenantId, status: 'on_time', schemaVersion: LATEST_SCHEMA_VERSION })]);
    const human = await runCli(ctx, ['rollout', 'report', String(LATEST_SCHEMA_VERSION)]);
    expect(human.stdout).toContain('on_time 1');

    const deferred = await runCli(ctx, ['rollout', 'defer', '--tenant', ws.tenantId, '--version', '9', '--reference', 'E-mail of 2026-11-20 from the customer', '--until', '2099-12-31']);
    expect(deferred.code, deferred.stderr).toBe(0);
    expect(deferred.stdout).toContain(`recorded: tenant ${ws.tenantId} defers version 9 until 2099-12-31`);
    const bad = await runCli(ctx, ['rollout', 'defer', '--tenant', ws.tenantId, '--version', 'x', '--reference', 'r']);
    expect(bad.code).toBe(2);
  }, 60_000);
});
