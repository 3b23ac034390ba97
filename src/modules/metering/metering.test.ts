/** MET-1..3 against real PostgreSQL: database time from pg_stat_database, sizes, peaks, resets, warnings. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import type { DatabaseUsage } from '../fleet/database-usage.ts';
import { createMeteringService } from './metering-service.ts';
import { DEFAULT_PLANS } from '../billing/plans.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { storageRoot } from '../../config/config.ts';

const HOUR = 3_600_000;
let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-11-02T08:10:00Z') });
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Metered' });
});
afterAll(async () => ctx?.close());

describe('metering', () => {
  it('[MET-2] database size and file storage are sampled hourly, once per hour whichever node samples, with the day\'s peak kept', async () => {
    const metering = ctx.app.modules.metering.service;
    expect((await metering.sample(ctx.clock.now())).sampled).toBe(1);
    expect((await metering.sample(ctx.clock.now())).sampled).toBe(0); // same hour: nothing twice
    const first = await ctx.core.db.selectFrom('usage_samples').selectAll().where('tenant_id', '=', ws.tenantId).executeTakeFirstOrThrow();
    expect(Number(first.database_bytes)).toBeGreaterThan(1_000_000);
    expect(first.db_time_ms).toBe(0); // the first sample is the baseline
    // More data, a file: the next hour's sample is bigger and the day's peak follows.
    const company = await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Dupont SARL' });
    await tenantQuery(ctx, ws, `INSERT INTO notes (id, company_id, body, created_at, updated_at) SELECT gen_random_uuid(), $1, repeat('x', 2000), now(), now() FROM generate_series(1, 3000)`, [company.id]);
    const res = await fetch(`${ctx.baseUrl}${ws.base}/attachments?fileName=a.pdf`, { method: 'POST', headers: { 'content-type': 'application/pdf', cookie: ws.owner.http.cookie!, 'x-csrf-token': ws.owner.http.csrfToken! }, body: Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(50_000, 1)]) });
    expect(res.status).toBe(201);
    // Backends report their statistics when idle (at most every second) and when they disconnect.
    await ctx.app.modules.fleet.connections.close(ws.tenantDatabaseId);
    await new Promise((r) => setTimeout(r, 1500));
    ctx.clock.advance(HOUR);
    expect((await metering.sample(ctx.clock.now())).sampled).toBe(1);
    const day = await ctx.core.db.selectFrom('usage_days').selectAll().where('tenant_id', '=', ws.tenantId).executeTakeFirstOrThrow();
    expect(day.samples).toBe(2);
    expect(Number(day.peak_database_bytes)).toBeGreaterThan(Number(first.database_bytes));
    expect(Number(day.peak_storage_bytes)).toBe(50_009);
    expect(day.db_time_ms).toBeGreaterThan(0); // the inserts above took database time
  });

  it('[MET-1] database time is the delta of pg_stat_database.active_time; a statistics reset or restart counts from zero, never negative', async () => {
    // Fed samples of the real counter shape, to walk through resets deterministically.
    let reading: DatabaseUsage = { tenantDatabaseId: ws.tenantDatabaseId, databaseBytes: 10, activeTimeMs: 1_000, statsReset: null };
    const metering = createMeteringService({ db: ctx.core.db, fleet: { usage: async () => [reading] }, files: createFsStorage(storageRoot(ctx.core.config)), mailer: ctx.core.mailer, plans: DEFAULT_PLANS });
    await ctx.core.db.deleteFrom('usage_samples').where('tenant_id', '=', ws.tenantId).execute();
    await ctx.core.db.deleteFrom('usage_days').where('tenant_id', '=', ws.tenantId).execute();
    const steps: [number, Date | null][] = [
      [1_000, null], // baseline
      [4_000, null], // +3,000
      [500, null], // the counter went back (crash): +500
      [2_500, new Date('2026-11-02T12:00:00Z')], // statistics reset in between: +2,500
      [3_000, new Date('2026-11-02T12:00:00Z')], // +500
    ];
    for (const [active, reset] of steps) {
      ctx.clock.advance(HOUR);
      reading = { ...reading, activeTimeMs: active, statsReset: reset };
      await metering.sample(ctx.clock.now());
    }
    const rows = await ctx.core.db.selectFrom('usage_samples').select('db_time_ms').where('tenant_id', '=', ws.tenantId).orderBy('sampled_at').execute();
    expect(rows.map((r) => r.db_time_ms)).toEqual([0, 3_000, 500, 2_500, 500]);
    const month = await metering.month(ws.tenantId, '2026-11');
    expect(month.cpuHours).toBeCloseTo(6_500 / HOUR, 9);
    // The billing run's per-page form: one query for many tenants, the same figures; no days, no entry.
    const many = await metering.months([ws.tenantId, '00000000-0000-4000-8000-000000000000'], '2026-11');
    expect([...many.keys()]).toEqual([ws.tenantId]);
    expect(many.get(ws.tenantId)).toEqual(month);
    expect((await metering.months([ws.tenantId], '2026-10')).size).toBe(0);
  });

  it('[MET-3] members see usage by day and month against the plan; owners and administrators are warned at 80 % and 100 %, once each per month', async () => {
    await ctx.core.db.updateTable('tenants').set({ plan: 'p19' }).where('id', '=', ws.tenantId).execute();
    const admin = await addMember(ctx, ws, 'administrator');
    const collaborator = await addMember(ctx, ws, 'collaborator');
    // 0.5 GB database allowance: 85 % then 120 %.
    let reading: DatabaseUsage = { tenantDatabaseId: ws.tenantDatabaseId, databaseBytes: 425_000_000, activeTimeMs: 3_000, statsReset: new Date('2026-11-02T12:00:00Z') };
    const metering = createMeteringService({ db: ctx.core.db, fleet: { usage: async () => [reading] }, files: createFsStorage(storageRoot(ctx.core.config)), mailer: ctx.core.mailer, plans: DEFAULT_PLANS });
    const mails = async () => ctx.core.db.selectFrom('mail_outbox').select(['to_address', 'subject']).where('template', '=', 'metering.usage_warning').execute();
    ctx.clock.advance(HOUR);
    expect((await metering.sample(ctx.clock.now())).warnings).toBe(1);
    ctx.clock.advance(HOUR);
    await metering.sample(ctx.clock.now()); // still 85 %: no second warning
    expect((await mails()).length).toBe(2); // owner + administrator, not the collaborator
    expect((await mails()).map((m) => m.to_address).sort()).toEqual([admin.email, ws.owner.email].sort());
    reading = { ...reading, databaseBytes: 600_000_000 };
    ctx.clock.advance(HOUR);
    expect((await metering.sample(ctx.clock.now())).warnings).toBe(1);
    expect((await mails()).filter((m) => /100/.test(m.subject))).toHaveLength(2);

    const page = await collaborator.http.get(`${ws.base}/usage`);
    expect(page.status).toBe(200);
    expect(page.body.plan.code).toBe('p19');
    expect(page.body.current.month).toBe('2026-11');
    expect(page.body.current.percentOfPlan.database).toBe(120);
    expect(page.body.days.length).toBeGreaterThan(0);
    expect(page.body.measured).toMatch(/active_time/);
    const stranger = await (await import('../../../test/factories.ts')).createMember(ctx);
    expect((await stranger.http.get(`${ws.base}/usage`)).status).toBe(404);
  });

  it('[MET-1] the CPU Havre spends on a tenant\'s requests is added to its day; a tenant without requests gets none', async () => {
    const idle = await createWorkspace(ctx, { name: 'Idle' });
    await ctx.app.modules.metering.flushCpu(); // start from a clean slate
    const before = await ctx.core.db.selectFrom('usage_days').select(['tenant_id', 'havre_cpu_ms']).where('tenant_id', 'in', [ws.tenantId, idle.tenantId]).execute();
    for (let i = 0; i < 150; i++) expect((await ws.owner.http.get(`${ws.base}/contacts?limit=50`)).status).toBe(200);
    expect(await ctx.app.modules.metering.flushCpu()).toBeGreaterThanOrEqual(1);
    const after = await ctx.core.db.selectFrom('usage_days').select(['tenant_id', 'havre_cpu_ms']).where('tenant_id', 'in', [ws.tenantId, idle.tenantId]).execute();
    const cpu = (rows: typeof after, id: string) => rows.filter((r) => r.tenant_id === id).reduce((a, r) => a + r.havre_cpu_ms, 0);
    expect(cpu(after, ws.tenantId)).toBeGreaterThan(cpu(before, ws.tenantId));
    expect(cpu(after, idle.tenantId)).toBe(0);
    const month = await ctx.app.modules.metering.service.month(ws.tenantId, '2026-11');
    expect(month.cpuHours * 3_600_000).toBeGreaterThan(cpu(after, ws.tenantId) - 1e-6);
  });
});
