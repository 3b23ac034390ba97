/** Payments against real PostgreSQL and the real SDKs, no network (BIL-10). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Stripe from 'stripe';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { createPaymentsModule } from './index.ts';
import { goCardlessSignature, issuedInvoiceOf, startFakeStripe } from './payments-fixtures.ts';
import { findCardNumbers, findIbans } from './sensitive-data.ts';

const STRIPE_SECRET = 'whsec_test_havre';
const GC_SECRET = 'gc_webhook_secret_test';
const PAN = '4242 4242 4242 4242';
const IBAN = 'FR14 2004 1010 0505 0001 3M02 606';

let ctx: TestContext;
let fakeStripe: Awaited<ReturnType<typeof startFakeStripe>>;
let staff: Staff;
const ws: Record<'stripe' | 'gc' | 'transfer', Workspace> = {} as never;
const invoices: Record<string, { id: string; gross_cents: string }> = {};
const stripe = new Stripe('sk_test_unused');

beforeAll(async () => {
  fakeStripe = await startFakeStripe();
  ctx = await createTestContext({
    now: new Date('2026-10-15T10:00:00Z'),
    config: { payments: { stripe: { secretKey: 'sk_test_havre', webhookSecret: STRIPE_SECRET, host: '127.0.0.1', port: fakeStripe.port, protocol: 'http' }, gocardless: { accessToken: 'gc_test_token', webhookSecret: GC_SECRET, environment: 'sandbox' } } },
  });
  await registerServers(ctx);
  staff = await createStaff(ctx, 'billing');
  for (const k of ['stripe', 'gc', 'transfer'] as const) {
    ws[k] = await createWorkspace(ctx, { name: k });
    invoices[k] = await issuedInvoiceOf(ctx, ws[k]);
  }
});
afterAll(async () => {
  await ctx?.close();
  await fakeStripe?.close();
});

async function stripeWebhook(event: Record<string, unknown>, secret = STRIPE_SECRET) {
  const payload = JSON.stringify(event);
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret });
  return ctx.client().request('POST', '/api/v1/payments/stripe/webhook', { rawBody: payload, headers: { 'content-type': 'application/json', 'stripe-signature': header } });
}

async function gcWebhook(body: Record<string, unknown>, secret = GC_SECRET) {
  const raw = JSON.stringify(body);
  return ctx.client().request('POST', '/api/v1/payments/gocardless/webhook', { rawBody: raw, headers: { 'content-type': 'application/json', 'webhook-signature': goCardlessSignature(raw, secret) } });
}

async function snapshot() {
  const db = ctx.core.db;
  return JSON.stringify([await db.selectFrom('payments').selectAll().orderBy('id').execute(), await db.selectFrom('payment_events').selectAll().orderBy('event_id').execute(), await db.selectFrom('invoice_dunning').selectAll().orderBy('invoice_id').execute()]);
}

describe('payments', () => {
  it('[BIL-10] Stripe: a card registered by its PaymentMethod id is charged with key invoice:<id>:attempt:<n>; the signed webhook marks the invoice paid; a bad signature is a 400 and a replay changes nothing', async () => {
    const inv = invoices.stripe!;
    const owner = ws.stripe.owner;
    expect((await owner.http.post(`/api/v1/customers/${owner.customerId}/payment-methods/stripe`, { paymentMethodId: 'pm_card_visa' })).status).toBe(204);
    expect(fakeStripe.calls.map((c) => [c.path, c.idempotencyKey])).toEqual([['/v1/customers', `customer:${owner.customerId}`], ['/v1/payment_methods/pm_card_visa/attach', `attach:pm_card_visa:cus_Test1`]]);

    const charged = await staff.http.post(`/api/v1/admin/invoices/${inv.id}/charge`);
    expect(charged.status, JSON.stringify(charged.body)).toBe(200);
    expect(charged.body).toMatchObject({ provider: 'stripe', state: 'pending', amountCents: Number(inv.gross_cents) });
    const call = fakeStripe.calls.at(-1)!;
    expect([call.path, call.idempotencyKey]).toEqual(['/v1/payment_intents', `invoice:${inv.id}:attempt:1`]);
    expect(new URLSearchParams(call.body).get('amount')).toBe(inv.gross_cents);
    expect((await owner.http.get(`/api/v1/invoices/${inv.id}/payments`)).body.paid).toBe(false);

    // The payload carries a card number and an IBAN on purpose: nothing of it may be stored.
    const event = { id: 'evt_Test1', object: 'event', type: 'payment_intent.succeeded', data: { object: { id: 'pi_Test1', object: 'payment_intent', amount_received: Number(inv.gross_cents), payment_method_details: { card: { number: PAN }, sepa: { iban: IBAN } } } } };
    const before = await snapshot();
    const forged = await stripeWebhook(event, 'whsec_someone_else');
    expect(forged.status).toBe(400);
    expect(forged.body.code).toBe('invalid_signature');
    expect(await snapshot()).toBe(before);

    const ok = await stripeWebhook(event);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
    const view = await owner.http.get(`/api/v1/invoices/${inv.id}/payments`);
    expect(view.body).toMatchObject({ paid: true, paidCents: Number(inv.gross_cents), items: [{ provider: 'stripe', state: 'succeeded' }] });

    const after = await snapshot();
    const replay = await stripeWebhook(event);
    expect(replay.body).toEqual({ applied: 0, duplicates: 1, ignored: 0 });
    expect(await snapshot()).toBe(after);
    const paidEntries = await ctx.core.db.selectFrom('audit_log').select('seq').where('action', '=', 'payments.invoice_paid').where('subject_id', '=', inv.id).execute();
    expect(paidEntries).toHaveLength(1);
  });

  it('[BIL-10] GoCardless: a SEPA mandate id is charged with an idempotency key; the webhook verified by the SDK marks the invoice paid; bad signature 400; replay changes nothing', async () => {
    const inv = invoices.gc!;
    const created: { params: unknown; key: string | undefined }[] = [];
    // GoCardless' SDK only talks to its own hosts: the adapter gets a client with the same methods.
    const gc = createPaymentsModule(ctx.core, {
      tenants: ctx.app.modules.tenants, deletion: ctx.app.modules.deletion, billing: ctx.app.modules.billing,
      gocardlessClient: {
        mandates: { get: async (id) => ({ id, status: 'active', links: { customer: 'CU000Test' } }) },
        payments: { create: async (params, key) => (created.push({ params, key }), { id: 'PM000Test', status: 'pending_submission' }) },
      },
    });
    await gc.service.registerMandate(ws.gc.owner.customerId, 'MD000Test', { type: 'user', id: ws.gc.owner.userId });
    const payment = await gc.service.chargeInvoice(inv.id, { type: 'staff', id: staff.userId });
    expect(payment).toMatchObject({ provider: 'gocardless', provider_payment_id: 'PM000Test', state: 'pending' });
    expect(created).toEqual([{ params: { amount: inv.gross_cents, currency: 'EUR', links: { mandate: 'MD000Test' }, metadata: { havre_invoice_id: inv.id } }, key: `invoice:${inv.id}:attempt:1` }]);

    const body = { events: [{ id: 'EV000Test', created_at: '2026-10-20T10:00:00Z', resource_type: 'payments', action: 'confirmed', links: { payment: 'PM000Test' }, details: { origin: 'gocardless', description: `Collected from ${IBAN}` } }], meta: { webhook_id: 'WB000Test' } };
    const before = await snapshot();
    const forged = await gcWebhook(body, 'not_the_secret');
    expect(forged.status).toBe(400);
    expect(await snapshot()).toBe(before);

    const ok = await gcWebhook(body);
    expect(ok.body).toEqual({ applied: 1, duplicates: 0, ignored: 0 });
    expect((await ws.gc.owner.http.get(`/api/v1/invoices/${inv.id}/payments`)).body).toMatchObject({ paid: true, items: [{ provider: 'gocardless', state: 'succeeded' }] });
    const after = await snapshot();
    expect((await gcWebhook(body)).body).toEqual({ applied: 0, duplicates: 1, ignored: 0 });
    expect(await snapshot()).toBe(after);
  });

  it('[BIL-10] bank transfer: staff record it (a reference holding an IBAN or a card number is refused); customers see it; other customers and members without the role do not', async () => {
    const inv = invoices.transfer!;
    const url = `/api/v1/admin/invoices/${inv.id}/payments`;
    expect((await ws.transfer.owner.http.post(url, { amountCents: 100, receivedOn: '2026-10-15', reference: 'x' })).status).toBe(403);
    for (const reference of [`from ${IBAN}`, `card ${PAN}`]) {
      const refused = await staff.http.post(url, { amountCents: 100, receivedOn: '2026-10-15', reference });
      expect([refused.status, refused.body.code]).toEqual([400, 'reference_holds_payment_data']);
    }
    const part = await staff.http.post(url, { amountCents: 1000, receivedOn: '2026-10-15', reference: 'VIR F-2026 part 1' });
    expect(part.status, JSON.stringify(part.body)).toBe(201);
    expect(part.body).toMatchObject({ provider: 'bank_transfer', state: 'succeeded', invoicePaid: false });
    const rest = await staff.http.post(url, { amountCents: Number(inv.gross_cents) - 1000, receivedOn: '2026-10-15', reference: 'VIR F-2026 part 2' });
    expect(rest.body.invoicePaid).toBe(true);
    expect((await ws.transfer.owner.http.get(`/api/v1/invoices/${inv.id}/payments`)).body).toMatchObject({ paid: true, paidCents: Number(inv.gross_cents) });
    expect((await ws.stripe.owner.http.get(`/api/v1/invoices/${inv.id}/payments`)).status).toBe(404);
  });

  it('[BIL-10] nothing sensitive is stored: no card-number or IBAN column, and no card number or IBAN in any payments row, event or audit entry', async () => {
    expect(findCardNumbers(PAN)).toHaveLength(1); // the detectors work on the test data
    expect(findIbans(IBAN)).toHaveLength(1);
    const tables = ['payment_methods', 'payments', 'payment_events', 'invoice_dunning', 'dunning_suspensions'] as const;
    const columns = await ctx.core.db.selectFrom('information_schema.columns' as never).select(['table_name' as never, 'column_name' as never]).where('table_name' as never, 'in', tables as never).execute();
    expect(columns.length).toBeGreaterThan(20);
    for (const c of columns as { column_name: string }[]) expect(c.column_name).not.toMatch(/card|pan$|iban|bic|account_number|cvc|expir/i);
    const stored: unknown[] = [];
    for (const t of tables) stored.push(await ctx.core.db.selectFrom(t).selectAll().execute());
    // The entries' content (not their hashes: 64 random hex digits sometimes hold 16 that pass Luhn).
    stored.push(await ctx.core.db.selectFrom('audit_log').select(['seq', 'at', 'actor_type', 'actor_id', 'action', 'subject_type', 'subject_id', 'customer_id', 'ip', 'data']).where('action', 'like', 'payments.%').execute());
    const text = JSON.stringify(stored);
    expect(text).toContain('pm_card_visa');
    expect(findCardNumbers(text)).toEqual([]);
    expect(findIbans(text)).toEqual([]);
  });
});
