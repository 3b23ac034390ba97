/** BIL-7 against real PostgreSQL: notice of at least 60 days, every affected customer told, termination without penalty within 30 days, the new price billed from its date. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';

let ctx: TestContext;
let staff: Staff;
const ws: Workspace[] = [];

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-10-01T08:00:00Z') });
  await registerServers(ctx);
  staff = await createStaff(ctx, 'billing');
  for (const plan of ['p49', 'p49', 'p99']) {
    const w = await createWorkspace(ctx);
    expect((await w.owner.http.post('/api/v1/subscriptions', { tenantId: w.tenantId, plan })).status).toBe(201);
    ws.push(w);
  }
});
afterAll(async () => ctx?.close());

// Sessions last a day: after moving the clock, a fresh owner signs in.
const owner = async (w: Workspace) => (await createMember(ctx, { customerId: w.owner.customerId })).http;
const netOf = async (w: Workspace, month: string) => {
  const invoices = (await (await owner(w)).get('/api/v1/invoices')).body.invoices as { periodStart: string; netCents: number }[];
  return invoices.find((i) => i.periodStart.startsWith(month))?.netCents;
};

describe('price changes', () => {
  it('[BIL-7] a price change under 60 days ahead (or not on a 1st, or by a customer) is refused', async () => {
    // 1 October → 1 December is 61 days; 1 November only 31.
    expect((await staff.http.post('/api/v1/admin/price-changes', { plan: 'p49', newPriceCents: 5900, effectiveDate: '2026-11-01' })).body.code).toBe('price_notice_too_short');
    expect((await staff.http.post('/api/v1/admin/price-changes', { plan: 'p49', newPriceCents: 5900, effectiveDate: '2026-12-15' })).body.code).toBe('effective_date_not_first');
    expect((await ws[0]!.owner.http.post('/api/v1/admin/price-changes', { plan: 'p49', newPriceCents: 5900, effectiveDate: '2026-12-01' })).status).toBe(403);
    expect(await ctx.core.db.selectFrom('price_changes').select('id').execute()).toEqual([]);
  });

  it('[BIL-7] every customer on the plan is e-mailed once, with the date, the new price and the right to terminate within 30 days', async () => {
    const res = await staff.http.post('/api/v1/admin/price-changes', { plan: 'p49', newPriceCents: 5900, effectiveDate: '2026-12-01' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ customersNotified: 2, priceChange: { plan: 'p49', oldPriceCents: 4900, newPriceCents: 5900, objectionUntil: '2026-10-31' } });
    expect((await staff.http.post('/api/v1/admin/price-changes', { plan: 'p49', newPriceCents: 6900, effectiveDate: '2026-12-01' })).body.code).toBe('price_change_exists');
    const mails = await ctx.core.db.selectFrom('mail_outbox').select(['to_address', 'body_text']).where('template', '=', 'billing.price_change').orderBy('to_address').execute();
    expect(mails.map((m) => m.to_address)).toEqual([ws[0]!.owner.email, ws[1]!.owner.email].sort());
    expect(mails[0]!.body_text).toContain('€59.00');
    expect(mails[0]!.body_text).toContain('until 2026-10-31');
    expect(mails[0]!.body_text).toContain('ends on 2026-11-30');
  });

  it('[BIL-7] within 30 days a customer terminates without penalty, ending the day before the new price; after 30 days it cannot', async () => {
    const change = (await staff.http.get('/api/v1/admin/price-changes')).body.priceChanges[0];
    const subOf = async (w: Workspace) => (await (await owner(w)).get('/api/v1/subscriptions')).body.subscriptions[0];
    // The p99 customer is not concerned by a p49 change.
    expect((await ws[2]!.owner.http.post('/api/v1/termination-notices', { subscriptionId: (await subOf(ws[2]!)).id, priceChangeId: change.id })).status).toBe(404);
    ctx.clock.set(new Date('2026-10-31T20:00:00Z')); // 31 October, 21:00 in Paris: the 30th day
    const res = await (await owner(ws[0]!)).post('/api/v1/termination-notices', { subscriptionId: (await subOf(ws[0]!)).id, priceChangeId: change.id });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.termination).toMatchObject({ source: 'price_change', lastDay: '2026-11-30' });
    ctx.clock.set(new Date('2026-10-31T23:30:00Z')); // 1 November in Paris: too late
    expect((await (await owner(ws[1]!)).post('/api/v1/termination-notices', { subscriptionId: (await subOf(ws[1]!)).id, priceChangeId: change.id })).body.code).toBe('objection_period_over');
  });

  it('[BIL-7] the billing run uses the old price before the effective date and the new one from it', async () => {
    ctx.clock.set(new Date('2026-11-01T00:10:00+01:00'));
    await ctx.app.modules.billing.runMonth('2026-11');
    expect(await netOf(ws[1]!, '2026-11')).toBe(4900);
    ctx.clock.set(new Date('2026-12-01T00:10:00+01:00'));
    await ctx.app.modules.billing.runMonth('2026-12');
    expect(await netOf(ws[1]!, '2026-12')).toBe(5900);
    expect(await netOf(ws[2]!, '2026-12')).toBe(9900);
    // The customer who terminated is not invoiced at the new price: its contract ended on 30 November.
    expect(await netOf(ws[0]!, '2026-11')).toBe(4900);
    expect(await netOf(ws[0]!, '2026-12')).toBeUndefined();
  });
});
