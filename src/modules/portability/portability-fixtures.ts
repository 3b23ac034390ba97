/**
 * Test helpers for exports and imports (used by the tests only; not loaded by the application): a
 * workspace filled with records of every kind and attachments, an export run to its end, its
 * archive downloaded and unzipped, and a tenant's whole content as comparable rows.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import yauzl from 'yauzl';
import type { TestContext } from '../../../test/context.ts';
import type { Member } from '../../../test/factories.ts';
import { createRecord, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { describeTables, ident } from './tenant-tables.ts';

/** Text that trips naive CSV/XML writers: quotes, commas, line breaks, markup, non-ASCII, emoji. */
export const TRICKY = 'Dupont, "Fils" & Cie <SARL>\r\nÉté — 日本 🚀 ;\n_x0041_ fin';

/** POSTs raw bytes with the member's session (uploads and imports). */
export async function postRaw(ctx: TestContext, member: Member, url: string, body: Uint8Array | string, contentType: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${ctx.baseUrl}${url}`, { method: 'POST', headers: { cookie: member.http.cookie!, 'x-csrf-token': member.http.csrfToken!, 'content-type': contentType }, body });
  const text = await res.text();
  return { status: res.status, body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

/** Fills the workspace with records of every kind (settings, companies, contacts, employees, invoices, payments, notes, reminders, attachments). */
export async function fillWorkspace(ctx: TestContext, ws: Workspace): Promise<{ attachments: Record<string, Buffer> }> {
  const http = ws.owner.http;
  expect((await http.patch(`${ws.base}/settings`, { paymentTermsDays: 45, reminderSenderName: 'Compta Été' })).status).toBe(200);
  const acme = await createRecord(http, `${ws.base}/companies`, { name: TRICKY.slice(0, 200), city: 'Saint-Étienne', country: 'FR', addressLine1: 'Bât. "A", 3e étage' });
  const other = await createRecord(http, `${ws.base}/companies`, { name: 'Other', registrationId: '' });
  const zoe = await createRecord(http, `${ws.base}/contacts`, { companyId: acme.id, title: 'ms', firstName: 'Zoé', lastName: 'Œuvre', email: 'zoe@example.test', phone: '+33 1 23 45 67 89' });
  await createRecord(http, `${ws.base}/contacts`, { lastName: 'Sans société' });
  const employee = await createRecord(http, `${ws.base}/employees`, { firstName: 'Jean', lastName: "L'Été", hireDate: '2020-02-29', jobTitle: 'Comptable, senior' });
  const overdue = await createRecord(http, `${ws.base}/invoices`, { companyId: acme.id, number: 'F-2026-001', issueDate: '2026-09-01', dueDate: '2026-10-01', amountCents: 123_456 });
  const paid = await createRecord(http, `${ws.base}/invoices`, { companyId: other.id, number: 'F-2026-002', issueDate: '2026-10-01', amountCents: 50_000, currency: 'USD' });
  await createRecord(http, `${ws.base}/invoices/${overdue.id}/payments`, { paidOn: '2026-10-15', amountCents: 10_000, reference: 'VIR "123"' });
  await createRecord(http, `${ws.base}/invoices/${paid.id}/payments`, { paidOn: '2026-10-20', amountCents: 50_000 });
  const cancelled = await createRecord(http, `${ws.base}/invoices`, { companyId: other.id, number: 'F-2026-003', issueDate: '2026-10-02', amountCents: 7 });
  expect((await http.patch(`${ws.base}/invoices/${cancelled.id}`, { status: 'cancelled' })).status).toBe(200);
  await createRecord(http, `${ws.base}/notes`, { companyId: acme.id, body: `Note multi-ligne\n${TRICKY}` });
  await createRecord(http, `${ws.base}/notes`, { employeeId: employee.id, body: 'Entretien annuel' });
  await createRecord(http, `${ws.base}/notes`, { contactId: zoe.id, body: '=SUM(A1:A2)' });
  expect((await http.post(`${ws.base}/invoices/${overdue.id}/reminders`)).status).toBe(201);
  const pdf = Buffer.concat([Buffer.from('%PDF-1.7\n'), randomBytes(70_000), Buffer.from('\n%%EOF\n')]);
  const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(5_000)]);
  const attachments: Record<string, Buffer> = {};
  for (const [query, bytes, type] of [
    [`fileName=${encodeURIComponent('Facture été, n°1.pdf')}&invoiceId=${overdue.id}`, pdf, 'application/pdf'],
    [`fileName=photo.png&contactId=${zoe.id}`, png, 'image/png'],
  ] as const) {
    const res = await postRaw(ctx, ws.owner, `${ws.base}/attachments?${query}`, bytes, type);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    attachments[res.body.id] = bytes;
  }
  return { attachments };
}

/** Starts an export as `member` and waits for it to end; returns its final view. */
export async function runExport(ws: Workspace, member: Member = ws.owner): Promise<Record<string, any>> {
  const res = await member.http.post(`${ws.base}/exports`);
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  for (let i = 0; i < 600; i++) {
    const view = await member.http.get(`${ws.base}/exports/${res.body.id}`);
    if (view.body.state !== 'running') return view.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('export did not finish');
}

/** Downloads a complete export through a fresh link into a temporary file; returns its path and bytes. */
export async function downloadExport(ctx: TestContext, ws: Workspace, exportId: string, member: Member = ws.owner): Promise<{ file: string; bytes: Buffer }> {
  const link = await member.http.post(`${ws.base}/exports/${exportId}/download-link`);
  expect(link.status, JSON.stringify(link.body)).toBe(201);
  const res = await fetch(`${ctx.baseUrl}${link.body.url}`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/zip');
  const bytes = Buffer.from(await res.arrayBuffer());
  const dir = await mkdtemp(path.join(tmpdir(), 'havre-export-'));
  const file = path.join(dir, 'export.zip');
  await writeFile(file, bytes);
  return { file, bytes };
}

/** Every entry of a zip (file or buffer), by name. */
export async function unzip(source: string | Buffer): Promise<Map<string, Buffer>> {
  const zip = typeof source === 'string' ? await yauzl.openPromise(source) : await yauzl.fromBufferPromise(source);
  const out = new Map<string, Buffer>();
  for await (const entry of zip.eachEntry()) {
    const chunks: Buffer[] = [];
    for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(chunk);
    out.set(entry.fileName, Buffer.concat(chunks));
  }
  return out;
}

/** The whole content of a tenant: every table's rows (as text, ordered by primary key). */
export async function dumpTenant(ctx: TestContext, ws: Workspace): Promise<Record<string, unknown[]>> {
  return ctx.app.modules.fleet.connections.withTenant(ws.tenantDatabaseId, async (client) => {
    const out: Record<string, unknown[]> = {};
    for (const table of await describeTables(client)) {
      const order = table.primaryKey.map(ident).join(', ') || '1';
      const { rows } = await client.query(`SELECT ${table.columns.map((c) => `${ident(c.name)}::text AS ${ident(c.name)}`).join(', ')} FROM ${ident(table.name)} ORDER BY ${order}`);
      out[table.name] = rows;
    }
    return out;
  });
}

/** Rows of one table in the tenant (any SQL). */
export { tenantQuery };
