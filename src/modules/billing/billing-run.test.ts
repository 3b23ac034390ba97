/** The monthly billing run against real PostgreSQL: BIL-3, BIL-4, BIL-5, BIL-6, idempotence and gapless numbers (BIL-9). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { addMember, createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { runBillingMonth, type BillingRunDeps } from './billing-run.ts';
import { DEFAULT_PLANS, type MonthUsage } from './plans.ts';
import { createSubscriptions, type Subscriptions } from './subscriptions.ts';

let ctx: TestContext;
let subs: Subscriptions;
const ws: Workspace[] = [];
const usage = new Map<string, MonthUsage>();
let failOnPage: number | null = null;
let pages = 0;
const seller = { code: 'havre', identity: { name: 'Havre SAS' }, invoicePrefix: 'F', creditNotePrefix: 'AV', paymentTermsDays: 30 };
let deps: BillingRunDeps;

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-10-15T10:00:00Z') });
  await registerServers(ctx);
  subs = createSubscriptions({ db: ctx.core.db, clock: ctx.core.clock, audit: ctx.core.audit, plans: DEFAULT_PLANS });
  for (let i = 0; i < 5; i++) ws.push(await createWorkspace(ctx, { name: `Tenant ${i}` }));
  deps = {
    db: ctx.core.db, clock: ctx.core.clock, plans: DEFAULT_PLANS, seller, pageSize: 2, mailer: ctx.core.mailer,
    usageOf: async (ids) => {
      pages++;
      if (failOnPage !== null && pages === failOnPage) throw new Error('crash in the middle of the run');
      return new Map(ids.filter((id) => usage.has(id)).map((id) => [id, usage.get(id)!]));
    },
  };
});
afterAll(async () => ctx?.close());

async function invoicesOf(month: string) {
  return ctx.core.db.selectFrom('billing_documents').selectAll().where('idempotency_key', 'like', `monthly:%:${month}`).orderBy('sequence_value').execute();
}

describe('monthly billing run', () => {
  it('[BIL-4] a subscription starting mid-month is first invoiced prorata, dated its start day; [BIL-3] then in advance on the 1st', async () => {
    const a = await subs.subscribe(ws[0]!.tenantId, 'p49', { type: 'user' }); // 15 October
    expect(a.started_on).toBe('2026-10-15');
    const oct = await runBillingMonth(deps, '2026-10');
    expect(oct).toMatchObject({ invoiced: 1, alreadyInvoiced: 0 });
    const [first] = await invoicesOf('2026-10');
    expect([first!.issue_date, first!.net_cents, first!.vat_cents, first!.due_date]).toEqual(['2026-10-15', String(Math.floor((4900 * 17 * 2 + 31) / 62)), '537', '2026-11-14']);
    ctx.clock.set(new Date('2026-10-31T23:30:00Z')); // 1 November, 00:30 in Paris
    await subs.subscribe(ws[1]!.tenantId, 'p99', { type: 'user' }); // starts 1 November: a full month
    const nov = await runBillingMonth(deps, '2026-11');
    expect(nov.invoiced).toBe(2);
    const invoices = await invoicesOf('2026-11');
    expect(invoices.map((i) => [i.issue_date, i.net_cents]).sort()).toEqual([['2026-11-01', '4900'], ['2026-11-01', '9900']]);
  });

  it('[BIL-9] running a month again, or after a crash midway, makes exactly the missing invoices, numbered without gaps', async () => {
    for (let i = 2; i < 5; i++) await subs.subscribe(ws[i]!.tenantId, 'p19', { type: 'user' });
    ctx.clock.set(new Date('2026-12-01T00:05:00+01:00'));
    pages = 0;
    failOnPage = 2;
    await expect(runBillingMonth(deps, '2026-12')).rejects.toThrow('crash');
    failOnPage = null;
    const done = (await invoicesOf('2026-12')).length;
    expect(done).toBe(2); // the first page committed, the second not at all
    const again = await runBillingMonth(deps, '2026-12');
    expect(again, JSON.stringify(again)).toMatchObject({ invoiced: 3, alreadyInvoiced: 2 });
    expect(await runBillingMonth(deps, '2026-12')).toMatchObject({ invoiced: 0, alreadyInvoiced: 5 });
    const all = await ctx.core.db.selectFrom('billing_documents').select('sequence_value').where('kind', '=', 'invoice').orderBy('sequence_value').execute();
    expect(all.map((r) => Number(r.sequence_value))).toEqual(Array.from({ length: all.length }, (_, k) => k + 1));
    expect(all.length).toBe(1 + 2 + 5);
  });

  it('[BIL-6] a month above the plan is charged the difference to the smallest covering plan on the next invoice, and the subscription moves to it', async () => {
    usage.set(ws[2]!.tenantId, { cpuHours: 1.2, peakDatabaseBytes: 0.2e9, peakStorageBytes: 0.1e9 }); // p19 allows 0.5 h: p99 covers 1.2 h
    usage.set(ws[3]!.tenantId, { cpuHours: 0.4, peakDatabaseBytes: 0.4e9, peakStorageBytes: 0.9e9 }); // within p19
    ctx.clock.set(new Date('2027-01-01T00:05:00+01:00'));
    const jan = await runBillingMonth(deps, '2027-01');
    expect(jan.upgrades).toBe(1);
    const inv = (await invoicesOf('2027-01')).find((i) => (i.buyer as { tenantId: string }).tenantId === ws[2]!.tenantId)!;
    expect(inv.lines.map((l) => l.amountCents)).toEqual([9900 - 1900, 9900]);
    expect(inv.lines[0]!.labelFr).toContain('décembre 2026');
    expect((await subs.ofTenant(ws[2]!.tenantId))!.plan).toBe('p99');
    const tenant = await ctx.core.db.selectFrom('tenants').select('plan').where('id', '=', ws[2]!.tenantId).executeTakeFirstOrThrow();
    expect(tenant.plan).toBe('p99');
    // "with a notice": one e-mail to the owner, not repeated by a second run.
    await runBillingMonth(deps, '2027-01');
    const notices = await ctx.core.db.selectFrom('mail_outbox').select(['to_address', 'subject', 'body_text']).where('template', '=', 'billing.overuse_notice').execute();
    expect(notices.map((n) => n.to_address)).toEqual([ws[2]!.owner.email]);
    expect(notices[0]!.body_text).toContain('December 2026');
    expect(notices[0]!.body_text).toContain('€80.00');
  });

  it('[BIL-5] after a termination notice the contract ends at the end of the following month: invoiced until then, not after; no partial refund', async () => {
    const sub = (await subs.ofTenant(ws[4]!.tenantId))!;
    ctx.clock.set(new Date('2027-01-20T10:00:00Z'));
    const ended = await subs.terminate(sub.id, { source: 'portal', actor: { type: 'user' } });
    expect(ended.ends_on).toBe('2027-02-28');
    ctx.clock.set(new Date('2027-02-01T00:05:00+01:00'));
    await runBillingMonth(deps, '2027-02');
    ctx.clock.set(new Date('2027-03-01T00:05:00+01:00'));
    await runBillingMonth(deps, '2027-03');
    const billed = await ctx.core.db.selectFrom('billing_documents').select('idempotency_key').where('idempotency_key', 'like', `monthly:${sub.id}:%`).orderBy('idempotency_key').execute();
    expect(billed.map((b) => b.idempotency_key!.slice(-7))).toEqual(['2026-12', '2027-01', '2027-02']);
    // Staff record a letter received earlier: the earlier end stays.
    const letter = await subs.terminate(sub.id, { source: 'staff', receivedAt: new Date('2027-01-25T10:00:00Z'), actor: { type: 'staff' } });
    expect(letter.ends_on).toBe('2027-02-28');
  });
});

describe('plan changes', () => {
  it('[BIL-3] a plan change asked mid-month applies from the 1st of the next month: this month stays invoiced at the old plan, the next at the new one', async () => {
    const sub = (await subs.ofTenant(ws[0]!.tenantId))!;
    ctx.clock.set(new Date('2027-03-10T10:00:00Z'));
    // Months have passed in this file: fresh sessions for an administrator of each customer.
    const admin = await addMember(ctx, ws[0]!, 'administrator');
    const stranger = await addMember(ctx, ws[1]!, 'administrator');
    const res = await admin.http.post(`/api/v1/subscriptions/${sub.id}/plan-change`, { plan: 'p199' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ plan: sub.plan, pendingPlanChange: { plan: 'p199', from: '2027-04' } });
    expect((await stranger.http.post(`/api/v1/subscriptions/${sub.id}/plan-change`, { plan: 'p199' })).status).toBe(404); // another customer
    expect((await admin.http.post(`/api/v1/subscriptions/${sub.id}/plan-change`, { plan: 'p7' })).status).toBe(400);
    ctx.clock.set(new Date('2027-04-01T00:05:00+02:00'));
    await runBillingMonth(deps, '2027-04');
    const april = (await invoicesOf('2027-04')).find((i) => (i.buyer as { tenantId: string }).tenantId === ws[0]!.tenantId)!;
    expect(april.lines.map((l) => l.amountCents)).toEqual([19900]);
    const after = (await subs.ofTenant(ws[0]!.tenantId))!;
    expect([after.plan, after.next_plan, after.next_plan_from]).toEqual(['p199', null, null]);
    const march = await ctx.core.db.selectFrom('billing_documents').select('net_cents').where('idempotency_key', '=', `monthly:${sub.id}:2027-03`).executeTakeFirstOrThrow();
    expect(march.net_cents).not.toBe('19900');
  });
});
