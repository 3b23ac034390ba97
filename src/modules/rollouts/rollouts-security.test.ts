/**
 * SEC-5: a security release reaches every tenant within 5 Paris business days, unless the
 * customer asked otherwise in writing; the report shows, per tenant, on time / late / overdue /
 * pending / deferred / failed.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { createRolloutsRepo } from './rollouts-repo.ts';
import { testRollouts, withExtraMigrations } from './rollouts-fixtures.ts';

let ctx: TestContext;
let admin: Staff;
const t: Record<'onTime' | 'late' | 'deferred' | 'failing', Workspace> = {} as never;

const L = LATEST_SCHEMA_VERSION;
const V = L + 1;
const MIGRATIONS = withExtraMigrations('CREATE TABLE security_fix (id int);');
// Released on Thursday 5 November 2026 at 10:00 in Paris. Five business days: Fri 6, Mon 9, Tue 10,
// (Wed 11 is Armistice Day), Thu 12, Fri 13 → due by the end of Friday 13 November, Paris time.
const RELEASED = new Date('2026-11-05T09:00:00Z');
const REFERENCE = 'Letter of 2026-11-04 from the DPO, ticket 881: defer until our audit';

beforeAll(async () => {
  ctx = await createTestContext({ now: RELEASED });
  await registerServers(ctx);
  // Created a second apart: the rollout takes them in this order (and the clock only moves forward).
  for (const [key, name] of [['onTime', 'On Time'], ['late', 'Late'], ['deferred', 'Deferred'], ['failing', 'Failing']] as const) {
    t[key] = await createWorkspace(ctx, { name });
    ctx.clock.advance(1_000);
  }
  admin = await createStaff(ctx, 'admin');
});
afterAll(async () => ctx?.close());

describe('security releases (SEC-5)', () => {
  it('[SEC-5] staff admins record a customer\'s written request to defer a security release', async () => {
    const url = `/api/v1/admin/tenants/${t.deferred.tenantId}/security-deferrals`;
    const support = await createStaff(ctx, 'support');
    const member = await createMember(ctx);
    expect((await support.http.post(url, { version: V, reference: REFERENCE })).status).toBe(403);
    expect((await member.http.post(url, { version: V, reference: REFERENCE })).status).toBe(403);
    expect((await admin.http.post(url, { version: V })).status).toBe(400);
    expect((await admin.http.post(url, { version: V, reference: REFERENCE, until: '2026-11-01' })).body.code).toBe('until_in_past');
    expect((await admin.http.post('/api/v1/admin/tenants/00000000-0000-4000-8000-000000000000/security-deferrals', { version: V, reference: REFERENCE })).status).toBe(404);
    expect((await admin.http.post('/api/v1/admin/tenants/nope/security-deferrals', { version: V, reference: REFERENCE })).status).toBe(404);

    const res = await admin.http.post(url, { version: V, reference: REFERENCE });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ tenantId: t.deferred.tenantId, version: V, reference: REFERENCE, until: null, recordedBy: { type: 'staff', id: admin.userId }, recordedAt: ctx.clock.now().toISOString() });
    const audit = await ctx.core.db.selectFrom('audit_log').select(['actor_id', 'data']).where('action', '=', 'security.deferral_recorded').execute();
    expect(audit).toEqual([{ actor_id: admin.userId, data: { releaseVersion: V, reference: REFERENCE, until: null } }]);
  });

  it('[SEC-5] the report tells on time / late / overdue / deferred / failed against 5 Paris business days (weekend and a French holiday skipped); a deferred tenant is skipped', async () => {
    // The failing tenant cannot take the fix (a conflicting table).
    await tenantQuery(ctx, t.failing, 'CREATE TABLE security_fix (planted text)');
    // Each tenant's update happens at a planned instant: the hook (where the backup goes) moves the clock.
    const plan = new Map<string, Date>([
      [t.onTime.tenantDatabaseId, new Date('2026-11-13T13:00:00Z')], // Friday 13, 14:00 in Paris: on time only because the 11th is a holiday
      [t.late.tenantDatabaseId, new Date('2026-11-16T08:00:00Z')], // Monday 16: late
    ]);
    const rollouts = testRollouts(ctx.core, ctx.app.modules.workspace, ctx.clock, {
      migrations: MIGRATIONS,
      beforeUpgrade: async (id) => {
        if (plan.has(id)) ctx.clock.set(plan.get(id)!);
      },
    });
    const { rollout, release } = await rollouts.service.create({ target: V, security: true, releasedAt: RELEASED, batchSize: 1, concurrency: 1, actor: { type: 'cli' } });
    expect(release).toMatchObject({ version: V, security: true, released_at: RELEASED });
    const outcome = await rollouts.service.run(rollout!.id);
    expect(outcome.counts).toMatchObject({ total: 4, done: 2, failed: 1, deferred: 1 });

    // The deferred tenant was skipped: still on its old version.
    expect(await tenantQuery(ctx, t.deferred, 'SELECT schema_version FROM havre_meta')).toEqual([{ schema_version: L }]);
    const progress = await rollouts.service.progress(rollout!.id);
    expect(progress.deferred.map((i) => i.tenant_id)).toEqual([t.deferred.tenantId]);

    // A tenant created after the rollout from an older database (here: the shipped schema, below V) is still to do.
    const newcomer = await createWorkspace(ctx, { name: 'Newcomer' });

    // Wednesday 11 (a holiday): before the deadline, the newcomer is pending.
    ctx.clock.set(new Date('2026-11-11T12:00:00Z'));
    const before = await rollouts.security.report(V);
    expect(before).toMatchObject({ version: V, security: true, deadlineDate: '2026-11-13', deadline: new Date('2026-11-13T23:00:00Z') });
    expect(before.tenants.find((x) => x.tenantId === newcomer.tenantId)!.status).toBe('pending');

    // Monday 16 at noon, through the API.
    ctx.clock.set(new Date('2026-11-16T11:00:00Z'));
    // (Sessions last a day: sign in again after moving the clock.)
    admin = await createStaff(ctx, 'admin');
    const res = await admin.http.get(`/api/v1/admin/releases/${V}/report`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const byId = new Map<string, any>(res.body.tenants.map((x: any) => [x.tenantId, x]));
    expect(byId.get(t.onTime.tenantId)).toMatchObject({ status: 'on_time', updatedAt: '2026-11-13T13:00:00.000Z', schemaVersion: V, deadline: '2026-11-13T23:00:00.000Z' });
    expect(byId.get(t.late.tenantId)).toMatchObject({ status: 'late', updatedAt: '2026-11-16T08:00:00.000Z' });
    expect(byId.get(newcomer.tenantId)).toMatchObject({ status: 'overdue', updatedAt: null, schemaVersion: L });
    expect(byId.get(t.deferred.tenantId)).toMatchObject({ status: 'deferred', deferral: { reference: REFERENCE, until: null }, schemaVersion: L, deadline: null });
    expect(byId.get(t.failing.tenantId)).toMatchObject({ status: 'failed', schemaVersion: L });
    expect(byId.get(t.failing.tenantId).error).toMatch(/42P07/);
    expect(res.body.summary).toEqual({ on_time: 1, late: 1, overdue: 1, pending: 0, deferred: 1, failed: 1 });
    expect(res.body).toMatchObject({ releasedAt: RELEASED.toISOString(), deadlineDate: '2026-11-13', asOf: '2026-11-16T11:00:00.000Z' });
    expect((await admin.http.get(`/api/v1/admin/releases/${V + 5}/report`)).status).toBe(404);

    // A deferral with an end: once over, the tenant has 5 business days from its last day.
    const until = '2026-11-17';
    expect((await admin.http.post(`/api/v1/admin/tenants/${t.deferred.tenantId}/security-deferrals`, { version: V, reference: REFERENCE, until })).status).toBe(201);
    ctx.clock.set(new Date('2026-11-19T09:00:00Z'));
    const later = (await rollouts.security.report(V)).tenants.find((x) => x.tenantId === t.deferred.tenantId)!;
    expect(later).toMatchObject({ status: 'pending', deadline: new Date('2026-11-24T23:00:00Z') });
  });

  it('[SEC-5] a release marked as a security fix stays one', async () => {
    const repo = createRolloutsRepo(ctx.core.db);
    const row = await repo.upsertRelease({ version: V, now: ctx.clock.now(), security: false });
    expect(row.security).toBe(true);
    // A later --released-at can only move the SEC-5 clock earlier.
    expect((await repo.upsertRelease({ version: V, now: ctx.clock.now(), security: false, releasedAt: new Date('2026-11-10T00:00:00Z') })).released_at).toEqual(RELEASED);
    await expect(sql`UPDATE workspace_releases SET security = false WHERE version = ${V}`.execute(ctx.core.db)).rejects.toThrow(/stays a security release/);
  });
});
