/**
 * BKP-1 (one automatic backup a day, missed days caught up) and BKP-2 applied to real storage:
 * the node's background pass (`tick`) over simulated days, time moved by the clock.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';

const DAY = 86_400_000;
let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  // 10:00 in Paris; the backup window is 02:00-03:00 Paris, so today's slot has passed.
  ctx = await createTestContext({ now: new Date('2026-03-02T09:00:00Z'), config: { backups: { windowStartHour: 2, windowHours: 1 } } });
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Daily' });
});
afterAll(async () => ctx?.close());

async function backupsOf(tenantId: string) {
  return ctx.core.db.selectFrom('backups').selectAll().where('tenant_id', '=', tenantId).orderBy('started_at').execute();
}

async function objectsOf(backupId: string): Promise<number> {
  let n = 0;
  for (const store of ctx.app.modules.backups.stores) for await (const _ of store.list(`backups/${ws.tenantId}/${backupId}`)) n++;
  return n;
}

describe('schedule and retention', () => {
  it('[BKP-1] every live tenant is backed up once a day; a second pass the same day does nothing; missed days are caught up with one backup', async () => {
    const first = await ctx.app.modules.backups.tick();
    expect(first.backedUp).toBe(1);
    expect(first.verified).toBe(1);
    expect((await ctx.app.modules.backups.tick()).backedUp).toBe(0);
    ctx.clock.advance(DAY);
    expect((await ctx.app.modules.backups.tick()).backedUp).toBe(1);
    // Havre stopped for three days: one catch-up backup, not three.
    ctx.clock.advance(3 * DAY);
    expect((await ctx.app.modules.backups.tick()).backedUp).toBe(1);
    expect((await ctx.app.modules.backups.tick()).backedUp).toBe(0);
    const rows = await backupsOf(ws.tenantId);
    expect(rows.map((r) => [r.trigger, r.state, r.verification])).toEqual([
      ['scheduled', 'complete', 'verified'],
      ['scheduled', 'complete', 'verified'],
      ['scheduled', 'complete', 'verified'],
    ]);
  });

  it('[BKP-2] over 25 simulated days the kept set follows the rule, pruned backups leave every location once their lock has passed, and keepers get longer locks', async () => {
    for (let day = 0; day < 25; day++) {
      ctx.clock.advance(DAY);
      await ctx.app.modules.backups.tick();
    }
    const rows = await backupsOf(ws.tenantId);
    const live = rows.filter((r) => r.state === 'complete');
    const pruned = rows.filter((r) => r.state === 'pruned');
    expect(rows.every((r) => r.state === 'complete' || r.state === 'pruned')).toBe(true);
    // 7 daily + the newest of each of the last ISO weeks within 28 days + month keepers: ≤ 14, and far fewer than 28.
    expect(live.length).toBeGreaterThanOrEqual(7);
    expect(live.length).toBeLessThanOrEqual(14);
    expect(pruned.length).toBeGreaterThan(8);
    const now = ctx.clock.now();
    for (const p of pruned) expect(await objectsOf(p.id)).toBe(0);
    for (const k of live) {
      expect(await objectsOf(k.id)).toBe(6);
      expect(k.retain_until.getTime()).toBeGreaterThan(now.getTime());
    }
    // A keeper of a closed week is locked to the end of its keep (28 days), beyond the rolling 7-day lock.
    expect(live.some((k) => k.retain_until.getTime() - now.getTime() > 8 * DAY)).toBe(true);
    const copies = await ctx.core.db.selectFrom('backup_copies').select('state').where('backup_id', 'in', pruned.map((p) => p.id)).execute();
    expect(copies.every((c) => c.state === 'deleted')).toBe(true);
  }, 120_000);
});
