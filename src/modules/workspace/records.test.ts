import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createRecord, createWorkspace, type Workspace } from './workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

describe('workspace records', () => {
  it('[APP-1] companies, contacts, employees, invoices, payments and notes are created and read back', async () => {
    const http = ws.owner.http;
    const company = await createRecord(http, `${ws.base}/companies`, { name: 'Dupont SARL', registrationId: '732829320', vatNumber: 'FR44732829320', city: 'Lyon', country: 'FR' });
    expect(company).toMatchObject({ name: 'Dupont SARL', registrationId: '732829320', country: 'FR', addressLine1: null });
    const contact = await createRecord(http, `${ws.base}/contacts`, { companyId: company.id, title: 'ms', firstName: 'Anne', lastName: 'Martin', email: 'anne@dupont.example', phone: '+33 4 72 00 00 00', fax: '+33 4 72 00 00 01', position: 'Comptable' });
    expect(contact).toMatchObject({ companyId: company.id, lastName: 'Martin', fax: '+33 4 72 00 00 01' });
    const employee = await createRecord(http, `${ws.base}/employees`, { firstName: 'Paul', lastName: 'Durand', hireDate: '2024-03-01', jobTitle: 'Commercial' });
    expect(employee.hireDate).toBe('2024-03-01');
    const invoice = await createRecord(http, `${ws.base}/invoices`, { companyId: company.id, number: 'F-2026-001', issueDate: '2026-10-01', amountCents: 120_000 });
    expect(invoice).toMatchObject({ dueDate: '2026-10-31', currency: 'EUR', status: 'open', paidCents: 0 });
    const payment = await createRecord(http, `${ws.base}/invoices/${invoice.id}/payments`, { paidOn: '2026-10-15', amountCents: 120_000 });
    expect(payment.amountCents).toBe(120_000);
    expect((await http.get(`${ws.base}/invoices/${invoice.id}`)).body).toMatchObject({ status: 'paid', paidCents: 120_000 });
    const note = await createRecord(http, `${ws.base}/notes`, { contactId: contact.id, body: 'Rappeler lundi.' });
    expect(note.authorUserId).toBe(ws.owner.userId);
  });

  it('[APP-3] a record is updated and deleted; lists paginate with a cursor', async () => {
    const http = ws.owner.http;
    for (let i = 0; i < 7; i++) await createRecord(http, `${ws.base}/employees`, { firstName: 'E', lastName: `Zed${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await http.get(`${ws.base}/employees?limit=3&q=Zed${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((e: any) => e.lastName));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(['Zed0', 'Zed1', 'Zed2', 'Zed3', 'Zed4', 'Zed5', 'Zed6']);
    const one = await createRecord(http, `${ws.base}/companies`, { name: 'Temp' });
    const patched = await http.patch(`${ws.base}/companies/${one.id}`, { city: 'Nantes' });
    expect(patched.body).toMatchObject({ name: 'Temp', city: 'Nantes' });
    expect((await http.delete(`${ws.base}/companies/${one.id}`)).status).toBe(204);
    expect((await http.get(`${ws.base}/companies/${one.id}`)).body.code).toBe('company_not_found');
  });
});
