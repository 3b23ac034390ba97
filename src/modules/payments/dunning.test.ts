/** The dunning timeline against real PostgreSQL, time moved by the test clock (BIL-11). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import { createSession } from '../accounts/authn.ts';
import { createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { issuedInvoiceOf } from './payments-fixtures.ts';

let ctx: TestContext;
let staff: Staff;
let late: Workspace; // pays after suspension
let never: Workspace; // never pays: terminated by staff
let onTime: Workspace;
const inv: Record<string, { id: string; gross_cents: string; due_date: string | null }> = {};

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-10-15T10:00:00Z') });
  await registerServers(ctx);
  staff = await createStaff(ctx, 'billing');
  late = await createWorkspace(ctx, { name: 'Late payer' });
  never = await createWorkspace(ctx, { name: 'Never pays' });
  onTime = await createWorkspace(ctx, { name: 'On time' });
  inv.late = await issuedInvoiceOf(ctx, late);
  inv.never = await issuedInvoiceOf(ctx, never);
  inv.onTime = await issuedInvoiceOf(ctx, onTime);
});
afterAll(async () => ctx?.close());

/** Moves the clock; the factories' sessions last 24 hours, so everyone signs in again. */
async function at(day: string) {
  ctx.clock.set(new Date(`${day}T10:00:00Z`));
  const fresh = async (http: HttpClient, userId: string) => {
    const session = await createSession(ctx.core.db, ctx.core.clock, { userId, ttlHours: 24, secondFactorPending: false, ip: null, userAgent: 'vitest' });
    http.cookie = `havre_session=${session.token}`;
    http.csrfToken = session.csrfToken;
  };
  await fresh(staff.http, staff.userId);
  for (const w of [late, never, onTime]) await fresh(w.owner.http, w.owner.userId);
}
const run = () => ctx.app.modules.payments.runDunning();
const stateOf = async (w: Workspace) => (await ctx.core.db.selectFrom('tenants').select('state').where('id', '=', w.tenantId).executeTakeFirstOrThrow()).state;
const mailsTo = async (w: Workspace, template: string) => ctx.core.db.selectFrom('mail_outbox').select(['subject', 'body_text']).where('to_address', '=', w.owner.email).where('template', '=', template).execute();
const surcharges = async (invoiceId: string) => ctx.core.db.selectFrom('billing_documents').selectAll().where('idempotency_key', '=', `surcharge:${invoiceId}`).execute();

describe('dunning', () => {
  it('[BIL-11] reminders after the due date: at due+1 once, then at the next configured steps; none for a paid invoice', async () => {
    expect(inv.late!.due_date).toBe('2026-11-14');
    const paid = await staff.http.post(`/api/v1/admin/invoices/${inv.onTime!.id}/payments`, { amountCents: Number(inv.onTime!.gross_cents), receivedOn: '2026-10-15', reference: 'VIR on time' });
    expect(paid.body.invoicePaid).toBe(true);
    await at('2026-11-14');
    expect(await run()).toMatchObject({ reminders: 0 });
    await at('2026-11-15');
    expect(await run()).toMatchObject({ reminders: 2, suspensions: 0 });
    expect(await run()).toMatchObject({ reminders: 0 });
    const first = await mailsTo(late, 'payments.dunning_reminder');
    expect(first).toHaveLength(1);
    expect(first[0]!.body_text).toContain('2026-11-30'); // when the suspension comes
    await at('2026-11-21');
    expect(await run()).toMatchObject({ reminders: 2 }); // due+7
    await at('2026-11-29'); // due+15: last day of grace
    expect(await run()).toMatchObject({ reminders: 2, suspensions: 0 }); // due+14 step
    expect(await mailsTo(late, 'payments.dunning_reminder')).toHaveLength(3);
    expect(await mailsTo(onTime, 'payments.dunning_reminder')).toHaveLength(0);
    expect(await stateOf(late)).not.toBe('suspended');
  });

  it('[BIL-11] past the grace period: tenants suspended (workspace API 423, export still open), a 50 % surcharge invoiced once as management fees', async () => {
    await at('2026-11-30');
    expect(await run()).toMatchObject({ suspensions: 2, surcharges: 2 });
    expect(await run()).toMatchObject({ suspensions: 0, surcharges: 0 });
    expect(await stateOf(late)).toBe('suspended');
    expect(await stateOf(onTime)).not.toBe('suspended');
    const closed = await late.owner.http.get(`${late.base}/settings`);
    expect([closed.status, closed.body.code]).toEqual([423, 'tenant_suspended']);
    const exported = await late.owner.http.post(`${late.base}/exports`);
    expect(exported.status, JSON.stringify(exported.body)).toBe(202);
    // The owner can still see what to pay.
    expect((await late.owner.http.get(`/api/v1/invoices/${inv.late!.id}/payments`)).body.paid).toBe(false);

    const [surcharge, ...more] = await surcharges(inv.late!.id);
    expect(more).toHaveLength(0);
    expect(surcharge).toMatchObject({ kind: 'invoice', state: 'issued', customer_id: late.owner.customerId, issue_date: '2026-11-30', vat_cents: '0' });
    expect(surcharge!.number).toMatch(/\d+$/);
    expect(Number(surcharge!.net_cents)).toBe(Math.floor((Number(inv.late!.gross_cents) + 1) / 2));
    expect(surcharge!.lines[0]!.labelFr).toContain('Frais de gestion');
    expect(await mailsTo(late, 'payments.dunning_suspension')).toHaveLength(1);
  });

  it('[BIL-11] a payment that clears the unpaid invoice lifts the suspension at once, audited', async () => {
    const paid = await staff.http.post(`/api/v1/admin/invoices/${inv.late!.id}/payments`, { amountCents: Number(inv.late!.gross_cents), receivedOn: '2026-11-30', reference: 'VIR late' });
    expect(paid.body.invoicePaid).toBe(true);
    expect(await stateOf(late)).toBe('active');
    expect((await late.owner.http.get(`${late.base}/settings`)).status).toBe(200);
    const audit = await ctx.core.db.selectFrom('audit_log').select('data').where('action', '=', 'payments.suspension_lifted').where('customer_id', '=', late.owner.customerId).execute();
    expect(audit).toHaveLength(1);
    const transitions = await ctx.core.db.selectFrom('tenant_transitions').selectAll().where('tenant_id', '=', late.tenantId).orderBy('at').execute();
    expect(transitions.slice(-2).map((t) => [t.from_state, t.to_state])).toEqual([[expect.any(String), 'suspended'], ['suspended', 'active']]);
    // The other customer stays suspended.
    expect(await stateOf(never)).toBe('suspended');
  });

  it('[BIL-11] staff may terminate a customer unpaid past the grace period: subscription ends today, tenant cancelled (export still possible)', async () => {
    const refused = await staff.http.post(`/api/v1/admin/invoices/${inv.late!.id}/terminate`, {});
    expect([refused.status, refused.body.code]).toEqual([409, 'invoice_paid']);
    expect((await never.owner.http.post(`/api/v1/admin/invoices/${inv.never!.id}/terminate`, {})).status).toBe(403);
    const done = await staff.http.post(`/api/v1/admin/invoices/${inv.never!.id}/terminate`, { reason: 'unpaid' });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.tenants).toEqual([never.tenantId]);
    expect(await stateOf(never)).toBe('cancelled');
    const sub = await ctx.app.modules.billing.subscriptions.ofTenant(never.tenantId);
    expect([sub!.ends_on, sub!.termination_source]).toEqual(['2026-11-30', 'staff']);
  });
});
