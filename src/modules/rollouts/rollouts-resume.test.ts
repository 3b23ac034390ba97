/**
 * A rollout killed mid-way (SIGKILL of the process running it) and resumed: every tenant reaches
 * the target, each migration applied exactly once, nothing lost (TEN-6).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createWorkspace } from '../workspace/workspace-fixtures.ts';
import { SLOW_MIGRATIONS, testRollouts } from './rollouts-fixtures.ts';

let ctx: TestContext;
const root = path.resolve(import.meta.dirname, '../../..');
const TARGET = SLOW_MIGRATIONS.length;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  await createWorkspace(ctx, { name: 'Resume A' });
  await createWorkspace(ctx, { name: 'Resume B', region: 'de' });
  // And warm-pool databases on both servers: 8 tenant databases in all.
  await ctx.app.modules.fleet.pool.refill(undefined, { target: 3 });
});
afterAll(async () => ctx?.close());

/** Item states of the (only) rollout, counted. */
async function itemStates(): Promise<Record<string, number>> {
  const rows = await ctx.core.db.selectFrom('rollout_items').select(['state']).execute();
  const out: Record<string, number> = {};
  for (const r of rows) out[r.state] = (out[r.state] ?? 0) + 1;
  return out;
}

describe('rollout resume', () => {
  it('[TEN-6] a rollout killed with SIGKILL mid-way is resumed: all tenants reach the target, each migration applied exactly once', async () => {
    const databases = await ctx.core.db.selectFrom('tenant_databases').select('id').where('state', 'in', ['pooled', 'assigned']).execute();
    expect(databases).toHaveLength(8);

    // 1. The rollout runs in a child process (same control plane, same master key), 2 at a time.
    const child = spawn(process.execPath, [path.join(root, 'test/rollout-child.ts'), ctx.clock.now().toISOString(), '2', '2'], {
      cwd: root,
      env: { HAVRE_HOME: ctx.core.config.home, HAVRE_DATABASE_URL: ctx.core.config.databaseUrl, HAVRE_MASTER_KEY: ctx.core.config.masterKey, HAVRE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));

    // 2. Killed once some tenants are done, with others under way.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await itemStates();
      if ((states.done ?? 0) >= 2) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the child never got 2 tenants done: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const atKill = await itemStates();
    // Items the dead worker held: taken again only once its lease has expired.
    const heldAtKill = await ctx.core.db.selectFrom('rollout_items').select(['tenant_database_id', 'leased_until']).where('state', '=', 'running').execute();
    expect(atKill.done).toBeLessThan(8);
    expect((atKill.pending ?? 0) + (atKill.running ?? 0)).toBeGreaterThan(0);
    const rollout = await ctx.core.db.selectFrom('rollouts').selectAll().executeTakeFirstOrThrow();
    expect(rollout.state).toBe('running');

    // 3. Resumed in this process: `create` finds the unfinished rollout of the target; the dead
    //    worker's leases expire (the test's sleep moves the clock), then its tenants are taken again.
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, { migrations: SLOW_MIGRATIONS, workerId: 'resumer' });
    const resumed = await rollouts.service.create({ target: TARGET, actor: { type: 'cli' } });
    expect(resumed).toMatchObject({ created: false, rollout: { id: rollout.id } });
    const outcome = await rollouts.service.run(rollout.id, { concurrency: 4 });
    expect(outcome.status).toBe('finished');
    expect(outcome.rollout.state).toBe('succeeded');
    expect(outcome.counts).toMatchObject({ total: 8, done: 8, failed: 0 });
    for (const held of heldAtKill) {
      const item = await ctx.core.db.selectFrom('rollout_items').select(['attempts', 'finished_at']).where('tenant_database_id', '=', held.tenant_database_id).executeTakeFirstOrThrow();
      expect(item.attempts).toBe(2);
      expect(item.finished_at!.getTime()).toBeGreaterThanOrEqual(held.leased_until!.getTime());
    }

    // 4. Every tenant at the target; each migration once in its history; the non-idempotent rows once.
    const rows = await ctx.core.db.selectFrom('tenant_databases').select(['id', 'schema_version']).where('state', 'in', ['pooled', 'assigned']).execute();
    for (const d of rows) {
      expect(d.schema_version).toBe(TARGET);
      await ctx.app.modules.fleet.connections.withTenant(d.id, async (c) => {
        const history = (await c.query('SELECT version, count(*)::int AS n FROM havre_schema_history GROUP BY version ORDER BY version')).rows;
        expect(history).toEqual(Array.from({ length: TARGET }, (_, i) => ({ version: i + 1, n: 1 })));
        expect((await c.query('SELECT n FROM resume_probe ORDER BY n')).rows).toEqual([{ n: 1 }, { n: 2 }]);
        expect((await c.query('SELECT schema_version FROM havre_meta')).rows).toEqual([{ schema_version: TARGET }]);
      });
    }
    const audit = await ctx.core.db.selectFrom('audit_log').select('action').where('subject_id', '=', rollout.id).orderBy('seq').execute();
    expect(audit.map((a) => a.action)).toEqual(['rollout.started', 'rollout.finished']);
  }, 60_000);
});
