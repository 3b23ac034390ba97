/**
 * Maintenance notice (TEN-6): an update that interrupts service is announced to each affected
 * customer's owners and administrators when the rollout is created, and not applied to their
 * tenants before the notice period is over; the node's background loop then proceeds by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers, type Member } from '../../../test/factories.ts';
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { addMember, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { MAINTENANCE_NOTICE_TEMPLATE } from './rollouts-mails.ts';
import { outcomeText } from './rollouts-presenters.ts';
import { testRollouts, withExtraMigrations } from './rollouts-fixtures.ts';

let ctx: TestContext;
let a1: Workspace;
let a2: Workspace;
let b: Workspace;
let adminA: Member;
let collaboratorA: Member;

const L = LATEST_SCHEMA_VERSION;
const HOUR = 3_600_000;
const MIGRATIONS = withExtraMigrations('-- havre:interrupts-service\n-- rewrites the companies table\nALTER TABLE companies ADD COLUMN notice_probe bigint;');

beforeAll(async () => {
  ctx = await createTestContext();
  const servers = await registerServers(ctx);
  // Customer A: two tenants, an owner, an administrator (French) and a collaborator. Customer B: one tenant.
  a1 = await createWorkspace(ctx, { name: 'Atelier Nord' });
  const second = await a1.owner.http.post('/api/v1/tenants', { name: 'Atelier Sud', region: 'de' });
  expect(second.status).toBe(201);
  a2 = { ...a1, tenantId: second.body.id, base: `/api/v1/tenants/${second.body.id}`, tenantDatabaseId: (await ctx.core.db.selectFrom('tenants').select('tenant_database_id').where('id', '=', second.body.id).executeTakeFirstOrThrow()).tenant_database_id! };
  adminA = await addMember(ctx, a1, 'administrator');
  await ctx.core.db.updateTable('users').set({ locale: 'fr', name: 'Amélie Admin' }).where('id', '=', adminA.userId).execute();
  collaboratorA = await addMember(ctx, a1, 'collaborator');
  b = await createWorkspace(ctx, { name: 'Boulangerie Est' });
  // A warm-pool database serves nobody: no notice, no wait.
  await ctx.app.modules.fleet.pool.refill(servers.fr!.id, { target: 1 });
});
afterAll(async () => ctx?.close());

async function version(w: Workspace): Promise<number> {
  return (await tenantQuery(ctx, w, 'SELECT schema_version FROM havre_meta'))[0].schema_version;
}

describe('maintenance notice', () => {
  it('[TEN-6] an update that interrupts service sends one notice per customer person first, and waits the notice period before upgrading', async () => {
    expect(MIGRATIONS.at(-1)!.interruptsService).toBe(true);
    const createdAt = ctx.clock.now();
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, { migrations: MIGRATIONS, resumeIntervalMs: 3_600_000 });
    const { rollout } = await rollouts.service.create({ target: L + 1, actor: { type: 'cli' } });
    const noticeUntil = new Date(createdAt.getTime() + 72 * HOUR);
    expect(rollout).toMatchObject({ notices_sent: 3, notice_until: noticeUntil });

    // One e-mail per owner/administrator, queued with the rollout; none for the collaborator.
    const mails = await ctx.core.db.selectFrom('mail_outbox').select(['to_address', 'locale', 'subject', 'body_text', 'created_at']).where('template', '=', MAINTENANCE_NOTICE_TEMPLATE).execute();
    expect(mails.map((m) => m.to_address).sort()).toEqual([a1.owner.email, adminA.email, b.owner.email].sort());
    expect(mails.some((m) => m.to_address === collaboratorA.email)).toBe(false);
    const ownerA = mails.find((m) => m.to_address === a1.owner.email)!;
    expect(ownerA.subject).toBe('Planned maintenance of your Havre workspace');
    expect(ownerA.body_text).toContain('Atelier Nord');
    expect(ownerA.body_text).toContain('Atelier Sud');
    expect(ownerA.body_text).not.toContain('Boulangerie Est');
    expect(ownerA.body_text).toContain('Thursday, 26 November 2026 at 10:00 (Paris time)');
    expect(ownerA.body_text).toMatch(/briefly unavailable/);
    const french = mails.find((m) => m.to_address === adminA.email)!;
    expect(french).toMatchObject({ locale: 'fr', subject: 'Maintenance prévue de votre espace de travail Havre' });
    expect(french.body_text).toContain('jeudi 26 novembre 2026 à 10:00');
    expect(mails.find((m) => m.to_address === b.owner.email)!.body_text).toContain('Boulangerie Est');

    // Running now: only the warm-pool database is upgraded; the tenants wait.
    const first = await rollouts.service.run(rollout!.id);
    expect(first).toMatchObject({ status: 'waiting', waitingUntil: noticeUntil });
    expect(first.counts).toMatchObject({ total: 4, done: 1, waiting: 3, pending: 3 });
    for (const w of [a1, a2, b]) expect(await version(w)).toBe(L);
    // What `havre rollout` says then (and it exits 0).
    expect(outcomeText(first)).toContain(`3 tenant(s) got a maintenance notice and will not be updated before ${noticeUntil.toISOString()}`);
    expect(outcomeText(first)).toContain('resumes the rollout then by itself');

    // The background loop finds nothing due before the end of the notice period…
    ctx.clock.set(new Date(noticeUntil.getTime() - 60_000));
    expect(await rollouts.resumeDue()).toEqual([]);
    for (const w of [a1, a2, b]) expect(await version(w)).toBe(L);

    // …and proceeds once it is over, by itself (what `start` runs every minute).
    ctx.clock.set(noticeUntil);
    expect(await rollouts.resumeDue()).toEqual([rollout!.id]);
    await rollouts.idle();
    for (const w of [a1, a2, b]) expect(await version(w)).toBe(L + 1);
    const items = await ctx.core.db.selectFrom('rollout_items').select(['started_at', 'state']).where('rollout_id', '=', rollout!.id).execute();
    expect(items.every((i) => i.state === 'done' && i.started_at! >= mails[0]!.created_at)).toBe(true);
    expect((await rollouts.service.progress(rollout!.id)).rollout.state).toBe('succeeded');
    // Still one notice each.
    const after = await ctx.core.db.selectFrom('mail_outbox').select('id').where('template', '=', MAINTENANCE_NOTICE_TEMPLATE).execute();
    expect(after).toHaveLength(3);
  });

  it('the background loop of a started module resumes due rollouts every interval, and stops cleanly', async () => {
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, { migrations: withExtraMigrations('SELECT 1;', 'SELECT 2;'), resumeIntervalMs: 50 });
    const { rollout } = await rollouts.service.create({ target: L + 2, actor: { type: 'cli' } });
    const stop = rollouts.start!();
    const deadline = Date.now() + 10_000;
    while ((await rollouts.service.progress(rollout!.id)).rollout.state === 'running' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    await stop();
    expect((await rollouts.service.progress(rollout!.id)).rollout.state).toBe('succeeded');
  });
});
