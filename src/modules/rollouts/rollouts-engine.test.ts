/**
 * The rollout engine on real tenant databases (TEN-6): batches with progress, exactly-once
 * migrations, failure isolation with retries, two workers sharing a rollout, one running rollout
 * per target, and the operator API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers } from '../../../test/factories.ts';
import type { ServerView } from '../fleet/index.ts';
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import type { RolloutProgress } from './index.ts';
import { testRollouts, withExtraMigrations } from './rollouts-fixtures.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;
const workspaces: Workspace[] = [];

const L = LATEST_SCHEMA_VERSION;
// One migration set for the whole file: each test rolls out the next version to every database.
const MIGRATIONS = withExtraMigrations(
  'CREATE TABLE rollout_probe (n int NOT NULL); INSERT INTO rollout_probe VALUES (1);',
  // Changes data first, then fails where a table of that name was planted: all of it must roll back.
  "UPDATE companies SET name = name || ' (migrated)'; CREATE TABLE rollout_conflict (id int);",
  'INSERT INTO rollout_probe VALUES (3);',
);
const cli = { type: 'cli' as const };

async function query<T = any>(tenantDatabaseId: string, sql: string): Promise<T[]> {
  return ctx.app.modules.fleet.connections.withTenant(tenantDatabaseId, async (c) => (await c.query(sql)).rows as T[]);
}

async function liveDatabases(): Promise<{ id: string; schema_version: number }[]> {
  return ctx.core.db.selectFrom('tenant_databases').select(['id', 'schema_version']).where('state', 'in', ['pooled', 'assigned']).orderBy('id').execute();
}

beforeAll(async () => {
  ctx = await createTestContext();
  servers = await registerServers(ctx);
  for (let i = 0; i < 4; i++) workspaces.push(await createWorkspace(ctx, { name: `Rollout ${i}`, region: i % 2 ? 'de' : 'fr' }));
  // Warm-pool databases are rolled out too.
  await ctx.app.modules.fleet.pool.refill(servers.fr!.id, { target: 3 });
});
afterAll(async () => ctx?.close());

describe('rollout engine', () => {
  it('[TEN-6] upgrades every tenant database in batches with progress events; each migration is applied once per tenant', async () => {
    const databases = await liveDatabases();
    expect(databases).toHaveLength(7);
    const backedUp: { id: string; versionThen: number }[] = [];
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, {
      migrations: MIGRATIONS,
      // Where the backup goes: it runs before the tenant's update, while it is still on its old version.
      beforeUpgrade: async (id) => {
        backedUp.push({ id, versionThen: (await query(id, 'SELECT schema_version FROM havre_meta'))[0].schema_version });
      },
    });
    const { rollout, created } = await rollouts.service.create({ target: L + 1, batchSize: 3, concurrency: 2, actor: cli });
    expect(created).toBe(true);
    const events: RolloutProgress[] = [];
    const outcome = await rollouts.service.run(rollout!.id, { onProgress: (p) => events.push(p) });

    expect(events.map((e) => [e.batch, e.counts.done, e.counts.pending + e.counts.running])).toEqual([
      [1, 3, 4],
      [2, 6, 1],
      [3, 7, 0],
    ]);
    expect(events.every((e) => e.counts.total === 7 && e.counts.failed === 0)).toBe(true);
    expect(outcome.status).toBe('finished');
    expect(outcome.rollout.state).toBe('succeeded');
    expect(backedUp.map((b) => b.id).sort()).toEqual(databases.map((d) => d.id));
    expect(backedUp.every((b) => b.versionThen === L)).toBe(true);

    for (const d of await liveDatabases()) {
      expect(d.schema_version).toBe(L + 1);
      const history = await query(d.id, 'SELECT version, count(*)::int AS n FROM havre_schema_history GROUP BY version ORDER BY version');
      expect(history).toEqual(Array.from({ length: L + 1 }, (_, i) => ({ version: i + 1, n: 1 })));
      expect(await query(d.id, 'SELECT n FROM rollout_probe')).toEqual([{ n: 1 }]);
    }
    // Warm-pool databases went first (they serve nobody).
    const order = await ctx.core.db.selectFrom('rollout_items as i').innerJoin('tenant_databases as td', 'td.id', 'i.tenant_database_id').select(['td.state']).where('i.rollout_id', '=', rollout!.id).orderBy('i.position').execute();
    expect(order.map((o) => o.state)).toEqual(['pooled', 'pooled', 'pooled', 'assigned', 'assigned', 'assigned', 'assigned']);
    const audit = await ctx.core.db.selectFrom('audit_log').select(['action', 'data']).where('subject_id', '=', rollout!.id).orderBy('seq').execute();
    expect(audit.map((a) => a.action)).toEqual(['rollout.started', 'rollout.finished']);
    expect(audit[1]!.data).toMatchObject({ state: 'succeeded', done: 7, failed: 0 });

    // Nothing left below the target: nothing to do, nothing created.
    const again = await rollouts.service.create({ target: L + 1, actor: cli });
    expect(again.rollout).toBeNull();
  });

  it('[TEN-6] a failing tenant stays intact on its old version and is reported failed after maxAttempts, while the others upgrade', async () => {
    const victim = workspaces[1]!;
    const company = await createRecord(victim.owner.http, `${victim.base}/companies`, { name: 'Intact SARL' });
    await tenantQuery(ctx, victim, 'CREATE TABLE rollout_conflict (planted text)');
    const schemaBefore = await tenantQuery(ctx, victim, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2");
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, { migrations: MIGRATIONS });
    const { rollout } = await rollouts.service.create({ target: L + 2, batchSize: 4, concurrency: 4, actor: cli });
    const events: RolloutProgress[] = [];
    const outcome = await rollouts.service.run(rollout!.id, { onProgress: (p) => events.push(p) });

    expect(outcome.rollout.state).toBe('failed');
    expect(outcome.counts).toMatchObject({ total: 7, done: 6, failed: 1, pending: 0, running: 0 });
    expect(outcome.failures).toHaveLength(1);
    const failure = outcome.failures[0]!;
    expect(failure).toMatchObject({ tenant_database_id: victim.tenantDatabaseId, tenant_id: victim.tenantId, attempts: 3, state: 'failed' });
    expect(failure.last_error).toMatch(/^42P07: relation "rollout_conflict" already exists/);
    // Retried with back-off (2 s, then 4 s) before giving up.
    expect(failure.finished_at!.getTime() - failure.started_at!.getTime()).toBeGreaterThanOrEqual(6_000);
    // The last batch event shows the failure.
    expect(events.at(-1)!.counts).toMatchObject({ done: 6, failed: 1 });

    // The failed tenant: version, history, schema and data as before.
    expect(await tenantQuery(ctx, victim, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: L + 1 }]);
    expect(await tenantQuery(ctx, victim, 'SELECT max(version) AS v FROM havre_schema_history')).toEqual([{ v: L + 1 }]);
    expect(await tenantQuery(ctx, victim, "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")).toEqual(schemaBefore);
    expect((await victim.owner.http.get(`${victim.base}/companies/${company.id}`)).body.name).toBe('Intact SARL');
    const victimRow = (await liveDatabases()).find((d) => d.id === victim.tenantDatabaseId)!;
    expect(victimRow.schema_version).toBe(L + 1);
    // Everyone else moved on.
    for (const d of await liveDatabases()) if (d.id !== victim.tenantDatabaseId) expect(d.schema_version).toBe(L + 2);
    expect((await createRecord(workspaces[0]!.owner.http, `${workspaces[0]!.base}/companies`, { name: 'After' })).name).toBe('After');

    // Fixed by the operator, a new rollout of the same version takes only that tenant.
    await tenantQuery(ctx, victim, 'DROP TABLE rollout_conflict');
    const retry = await rollouts.service.create({ target: L + 2, actor: cli });
    expect(retry.created).toBe(true);
    const second = await rollouts.service.run(retry.rollout!.id);
    expect(second.counts).toMatchObject({ total: 1, done: 1 });
    expect((await victim.owner.http.get(`${victim.base}/companies/${company.id}`)).body.name).toBe('Intact SARL (migrated)');
  });

  it('[TEN-6] two workers share one rollout: no tenant is taken twice, each migration applied once', async () => {
    const applied: number[][] = [];
    const upgrade = ctx.app.modules.workspace.upgrade;
    const counting = { upgrade: async (id: string, o: Parameters<typeof upgrade>[1]) => {
      const r = await upgrade(id, o);
      applied.push(r.applied);
      return r;
    } };
    // Real (short) waits: the clock stands still, so neither worker steals the other's live lease.
    const poll = { sleep: () => new Promise<void>((resolve) => setTimeout(resolve, 20)) };
    const a = testRollouts(ctx.core, counting, ctx.clock, { migrations: MIGRATIONS, workerId: 'worker-a', ...poll });
    const b = testRollouts(ctx.core, counting, ctx.clock, { migrations: MIGRATIONS, workerId: 'worker-b', ...poll });
    const { rollout } = await a.service.create({ target: L + 3, batchSize: 2, concurrency: 2, actor: cli });
    const [ra, rb] = await Promise.all([a.service.run(rollout!.id), b.service.run(rollout!.id)]);
    expect(ra.rollout.state).toBe('succeeded');
    expect(rb.counts).toMatchObject({ total: 7, done: 7 });
    expect(applied).toHaveLength(7);
    expect(applied.every((v) => v.length === 1 && v[0] === L + 3)).toBe(true);
    const items = await ctx.core.db.selectFrom('rollout_items').select(['attempts']).where('rollout_id', '=', rollout!.id).execute();
    expect(items.every((i) => i.attempts === 1)).toBe(true);
    for (const d of await liveDatabases()) expect(await query(d.id, 'SELECT n FROM rollout_probe ORDER BY n')).toEqual([{ n: 1 }, { n: 3 }]);
    const finished = await ctx.core.db.selectFrom('audit_log').select('action').where('subject_id', '=', rollout!.id).where('action', '=', 'rollout.finished').execute();
    expect(finished).toHaveLength(1);
  });

  it('[TEN-6] one unfinished rollout per target: creating again resumes it, and the database refuses a second', async () => {
    const target = workspaces[2]!;
    // The control plane's copy says one version behind the shipped schema (the database itself is ahead).
    await ctx.core.db.updateTable('tenant_databases').set({ schema_version: L - 1 }).where('id', '=', target.tenantDatabaseId).execute();
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock);
    const first = await rollouts.service.create({ target: L, actor: cli });
    const second = await rollouts.service.create({ target: L, actor: cli });
    expect(first.created).toBe(true);
    expect(second).toMatchObject({ created: false, rollout: { id: first.rollout!.id } });
    await expect(
      ctx.core.db.insertInto('rollouts').values({ ...first.rollout!, id: '00000000-0000-4000-8000-000000000001' }).execute(),
    ).rejects.toThrow(/rollouts_one_running_per_target/);
    await expect(rollouts.service.start({ target: L, actor: cli })).rejects.toMatchObject({ status: 409, code: 'rollout_in_progress' });
    // Inside the lock the tenant is found at its real version: nothing applied, the item is done.
    const done = await rollouts.service.run(first.rollout!.id);
    expect(done.counts).toMatchObject({ total: 1, done: 1 });
    const item = await ctx.core.db.selectFrom('rollout_items').select(['from_version', 'state']).where('rollout_id', '=', first.rollout!.id).executeTakeFirstOrThrow();
    expect(item).toEqual({ from_version: L + 3, state: 'done' });
  });

  it('[TEN-6] operator API: staff admins start a rollout (202, runs in the background) and follow its progress', async () => {
    const t = workspaces[3]!;
    // Simulate a database prepared by an older Havre: one version behind, in the database and the control plane.
    await tenantQuery(ctx, t, `DROP TABLE attachments; DELETE FROM havre_schema_history WHERE version >= ${L}; UPDATE havre_meta SET schema_version = ${L - 1}`);
    await ctx.core.db.updateTable('tenant_databases').set({ schema_version: L - 1 }).where('id', '=', t.tenantDatabaseId).execute();
    const admin = await createStaff(ctx, 'admin');
    const support = await createStaff(ctx, 'support');
    const member = await createMember(ctx);

    expect((await member.http.post('/api/v1/admin/rollouts', {})).status).toBe(403);
    expect((await support.http.post('/api/v1/admin/rollouts', {})).status).toBe(403);
    expect((await admin.http.post('/api/v1/admin/rollouts', { targetVersion: 99 })).body.code).toBe('unknown_version');
    expect((await admin.http.post('/api/v1/admin/rollouts', { batchSize: 0 })).status).toBe(400);

    const started = await admin.http.post('/api/v1/admin/rollouts', { batchSize: 5, concurrency: 2 });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body).toMatchObject({ targetVersion: L, state: 'running', batchSize: 5, concurrency: 2, counts: { total: 1 } });
    await ctx.app.modules.rollouts.idle();

    const details = await support.http.get(`/api/v1/admin/rollouts/${started.body.id}`);
    expect(details.status).toBe(200);
    expect(details.body).toMatchObject({ id: started.body.id, state: 'succeeded', counts: { total: 1, done: 1, failed: 0 }, failures: [] });
    expect(details.body.workerId).toBeUndefined();
    expect(await tenantQuery(ctx, t, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: L }]);

    const list = await support.http.get('/api/v1/admin/rollouts?limit=50');
    expect(list.body.rollouts.map((r: any) => r.id)).toContain(started.body.id);
    expect(list.body.rollouts.length).toBeGreaterThanOrEqual(5);
    expect((await support.http.get('/api/v1/admin/rollouts/not-a-uuid')).status).toBe(404);
    expect((await member.http.get(`/api/v1/admin/rollouts/${started.body.id}`)).status).toBe(403);

    // Nothing left below the latest version.
    const nothing = await admin.http.post('/api/v1/admin/rollouts');
    expect(nothing.status).toBe(200);
    expect(nothing.body).toEqual({ targetVersion: L, nothingToDo: true });
    const spec = await ctx.client().get('/api/openapi.json');
    expect(Object.keys(spec.body.paths)).toEqual(expect.arrayContaining(['/api/v1/admin/rollouts', '/api/v1/admin/rollouts/{id}', '/api/v1/admin/releases/{version}/report', '/api/v1/admin/tenants/{id}/security-deferrals']));
  });
});
