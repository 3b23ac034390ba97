/** The billing API against real PostgreSQL: BIL-2, BIL-5, BIL-9 (invoices, PDF, credit notes), BIL-12, MET-3 (configured plans). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { addMember, createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { DEFAULT_PLANS } from './plans.ts';

let ctx: TestContext;
let staff: Staff;
let ws: Workspace;
const seller = { name: 'Havre Test', legalForm: 'SAS', shareCapital: '10 000 €', address: '12 rue des Docks, 76600 Le Havre', siren: '732829320', rcsCity: 'Le Havre', vatNumber: 'FR44732829320' };

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-10-15T10:00:00Z'), config: { billing: { seller, plans: DEFAULT_PLANS.map((p) => (p.code === 'p49' ? { ...p, cpuHours: 1.25 } : { ...p })) } } });
  await registerServers(ctx);
  staff = await createStaff(ctx, 'billing');
  ws = await createWorkspace(ctx, { name: 'Atelier' });
});
afterAll(async () => ctx?.close());

function pdfText(bytes: Buffer): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'invoice-'));
  writeFileSync(path.join(dir, 'i.pdf'), bytes);
  return execFileSync('pdftotext', ['-layout', path.join(dir, 'i.pdf'), '-'], { encoding: 'utf8' }).replace(/\s+/g, ' ');
}

async function pdf(http: Workspace['owner']['http'], id: string, lang: 'fr' | 'en'): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${ctx.baseUrl}/api/v1/invoices/${id}/pdf?lang=${lang}`, { headers: { cookie: http.cookie! } });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type'), text: res.status === 200 ? pdfText(bytes) : '' };
}

describe('subscriptions and termination notices', () => {
  it('[BIL-2] owners pick a plan for a tenant in trial, without a payment method; collaborators and strangers cannot', async () => {
    const collaborator = await addMember(ctx, ws, 'collaborator');
    expect((await collaborator.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p49' })).status).toBe(403);
    const stranger = await createMember(ctx);
    expect((await stranger.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p49' })).status).toBe(404);
    expect((await ws.owner.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p1000' })).body.code).toBe('unknown_plan');
    const res = await ws.owner.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p49' });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ tenantId: ws.tenantId, plan: 'p49', startedOn: '2026-10-15', termination: null });
    expect((await ws.owner.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p99' })).status).toBe(409);
    const mine = await collaborator.http.get('/api/v1/subscriptions');
    expect(mine.body.subscriptions.map((s: { plan: string }) => s.plan)).toEqual(['p49']);
    expect((await stranger.http.get('/api/v1/subscriptions')).body.subscriptions).toEqual([]);
  });

  it('[MET-3] the usage page compares with the configured plan table (billing.plans), not a built-in one', async () => {
    const usage = await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/usage`);
    expect(usage.status).toBe(200);
    expect(usage.body.plan).toMatchObject({ code: 'p49', cpuHours: 1.25 });
  });

  it('[BIL-9] the run issues the prorata invoice; members list it, read it, and download it as PDF in French and English with every mandatory mention', async () => {
    const outcome = await ctx.app.modules.billing.runMonth('2026-10');
    expect(outcome.invoiced).toBe(1);
    const list = await ws.owner.http.get('/api/v1/invoices');
    expect(list.body.invoices).toHaveLength(1);
    const invoice = list.body.invoices[0];
    expect(invoice).toMatchObject({ kind: 'invoice', number: 'F000001', issueDate: '2026-10-15', dueDate: '2026-11-14', periodStart: '2026-10-15', periodEnd: '2026-10-31', netCents: 2687, vatCents: 537, grossCents: 3224 });
    expect((await ws.owner.http.get(`/api/v1/invoices/${invoice.id}`)).body.number).toBe('F000001');
    const stranger = await createMember(ctx);
    expect((await stranger.http.get(`/api/v1/invoices/${invoice.id}`)).status).toBe(404);
    expect((await pdf(stranger.http, invoice.id, 'fr')).status).toBe(404);

    const fr = await pdf(ws.owner.http, invoice.id, 'fr');
    expect(fr.type).toBe('application/pdf');
    for (const mention of ['FACTURE', 'F000001', 'Havre Test', 'SAS au capital de 10 000 €', '12 rue des Docks, 76600 Le Havre', 'SIREN 732829320', 'RCS Le Havre', 'FR44732829320',
      'Date d’émission : 15 octobre 2026', 'du 15 octobre 2026 au 31 octobre 2026', 'Date d’échéance : 14 novembre 2026', 'Total HT', '26,87 €', 'TVA 20 %', '5,37 €', 'Total TTC', '32,24 €',
      'Pénalités de retard : trois fois le taux d’intérêt légal', 'Indemnité forfaitaire pour frais de recouvrement', '40,00 € (quarante euros', 'N° TVA intracommunautaire']) {
      expect(fr.text, mention).toContain(mention);
    }
    const en = await pdf(ws.owner.http, invoice.id, 'en');
    for (const mention of ['INVOICE', 'F000001', 'with a share capital of 10 000 €', 'SIREN 732829320', 'RCS Le Havre', 'VAT number: FR44732829320', 'Issue date: 15 October 2026', 'from 15 October 2026 to 31 October 2026',
      'Due date: 14 November 2026', 'Total excl. VAT', '€26.87', 'VAT 20 %', '€5.37', 'Total incl. VAT', '€32.24', 'Late-payment penalties: three times the French legal interest rate', 'Fixed indemnity for recovery costs', '€40.00 (forty euros']) {
      expect(en.text, mention).toContain(mention);
    }
  });

  it('[BIL-9] an EU business with a VAT number is invoiced under reverse charge, with the legal mention and its VAT number on the PDF', async () => {
    const eu = await createWorkspace(ctx, { name: 'GmbH' });
    await ctx.core.db.updateTable('customers').set({ country: 'DE', name: 'Beispiel GmbH' }).where('id', '=', eu.owner.customerId).execute();
    expect((await eu.owner.http.patch(`/api/v1/customers/${eu.owner.customerId}/billing-profile`, { vatNumber: 'FR44732829320' })).body.code).toBe('invalid_vat_number');
    expect((await eu.owner.http.patch(`/api/v1/customers/${eu.owner.customerId}/billing-profile`, { vatNumber: 'de 123 456 789' })).body).toMatchObject({ vatNumber: 'DE123456789' });
    await eu.owner.http.post('/api/v1/subscriptions', { tenantId: eu.tenantId, plan: 'p99' });
    await ctx.app.modules.billing.runMonth('2026-10');
    const [invoice] = (await eu.owner.http.get('/api/v1/invoices')).body.invoices;
    expect(invoice).toMatchObject({ number: 'F000002', vatCents: 0, vatRateBasisPoints: 0 });
    const fr = await pdf(eu.owner.http, invoice.id, 'fr');
    expect(fr.text).toContain('Autoliquidation');
    expect(fr.text).toContain('DE123456789');
    expect((await pdf(eu.owner.http, invoice.id, 'en')).text).toContain('Reverse charge');
  });

  it('[BIL-9] staff correct an issued invoice by a credit note with its own number; its PDF names the invoice corrected', async () => {
    const [invoice] = (await ws.owner.http.get('/api/v1/invoices')).body.invoices;
    expect((await ws.owner.http.post(`/api/v1/admin/invoices/${invoice.id}/credit-notes`, { reason: 'geste' })).status).toBe(403);
    const res = await staff.http.post(`/api/v1/admin/invoices/${invoice.id}/credit-notes`, { reason: 'Geste commercial', amountCents: 1000 });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ kind: 'credit_note', number: 'AV000001', correctsId: invoice.id, netCents: 1000, vatCents: 200 });
    const rest = await staff.http.post(`/api/v1/admin/invoices/${invoice.id}/credit-notes`, { reason: 'Résiliation' });
    expect(rest.body).toMatchObject({ number: 'AV000002', netCents: 2687 - 1000 });
    expect((await staff.http.post(`/api/v1/admin/invoices/${invoice.id}/credit-notes`, { reason: 'encore' })).body.code).toBe('nothing_to_credit');
    const text = (await pdf(ws.owner.http, res.body.id, 'fr')).text;
    expect(text).toContain('AVOIR');
    expect(text).toContain('Avoir rectifiant la facture : F000001 du 15 octobre 2026');
    expect((await pdf(ws.owner.http, res.body.id, 'en')).text).toContain('Credit note correcting invoice: F000001');
  });

  it('[BIL-5] a portal notice ends the contract at the end of the following month; staff record a letter at its date of receipt', async () => {
    const sub = (await ws.owner.http.get('/api/v1/subscriptions')).body.subscriptions[0];
    const collaborator = await addMember(ctx, ws, 'collaborator');
    expect((await collaborator.http.post('/api/v1/termination-notices', { subscriptionId: sub.id })).status).toBe(403);
    const other = await createWorkspace(ctx);
    await other.owner.http.post('/api/v1/subscriptions', { tenantId: other.tenantId, plan: 'p19' });
    const otherSub = (await other.owner.http.get('/api/v1/subscriptions')).body.subscriptions[0];
    // Staff record a letter received on 30 September: it ends on 31 October.
    expect((await other.owner.http.post('/api/v1/admin/termination-notices', { subscriptionId: otherSub.id, receivedAt: '2026-09-30T09:00:00+02:00', source: 'letter' })).status).toBe(403);
    const letter = await staff.http.post('/api/v1/admin/termination-notices', { subscriptionId: otherSub.id, receivedAt: '2026-09-30T09:00:00+02:00', source: 'letter' });
    expect(letter.status, JSON.stringify(letter.body)).toBe(201);
    expect(letter.body.termination).toMatchObject({ source: 'staff', lastDay: '2026-10-31' });
    const res = await ws.owner.http.post('/api/v1/termination-notices', { subscriptionId: sub.id });
    expect(res.status).toBe(201);
    expect(res.body.termination).toMatchObject({ source: 'portal', lastDay: '2026-11-30' });
  });

  it('[BIL-12] the public reference list shows current subscribers only, and never one who refused', async () => {
    const names = async () => (await ctx.client().get('/api/v1/public/references')).body.references.map((r: { name: string }) => r.name);
    const customer = await ctx.core.db.selectFrom('customers').select('name').where('id', '=', ws.owner.customerId).executeTakeFirstOrThrow();
    const trialOnly = await createWorkspace(ctx);
    const trialName = (await ctx.core.db.selectFrom('customers').select('name').where('id', '=', trialOnly.owner.customerId).executeTakeFirstOrThrow()).name;
    expect(await names()).toContain(customer.name);
    expect(await names()).not.toContain(trialName);
    const collaborator = await addMember(ctx, ws, 'collaborator');
    expect((await collaborator.http.patch(`/api/v1/customers/${ws.owner.customerId}/billing-profile`, { refusesReference: true })).status).toBe(403);
    expect((await ws.owner.http.patch(`/api/v1/customers/${ws.owner.customerId}/billing-profile`, { refusesReference: true })).body.refusesReference).toBe(true);
    expect(await names()).not.toContain(customer.name);
    expect(await names()).toContain('Beispiel GmbH');
  });
});
