import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yazl from 'yazl';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { storageRoot } from '../../config/config.ts';
import { attachmentArea, attachmentKey } from '../workspace/attachments-service.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { downloadExport, dumpTenant, fillWorkspace, postRaw, runExport, unzip } from './portability-fixtures.ts';

let ctx: TestContext;
let source: Workspace;
let attachments: Record<string, Buffer>;
let archive: Buffer;
let entries: Map<string, Buffer>;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  source = await createWorkspace(ctx, { name: 'Source' });
  ({ attachments } = await fillWorkspace(ctx, source));
  const view = await runExport(source);
  expect(view.state).toBe('complete');
  archive = (await downloadExport(ctx, source, view.id)).bytes;
  entries = await unzip(archive);
}, 60_000);
afterAll(async () => ctx?.close());

/** A new zip with the same entries, `change` applied to one of them. */
async function rezip(name: string, change: (b: Buffer) => Buffer): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [entry, bytes] of entries) zip.addBuffer(entry === name ? change(bytes) : bytes, entry);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function filesOf(ws: Workspace): Promise<string[]> {
  return readdir(path.join(storageRoot(ctx.core.config), attachmentArea(ws.tenantDatabaseId))).catch(() => []);
}

const importInto = (ws: Workspace, body: Buffer) => postRaw(ctx, ws.owner, `${ws.base}/imports`, body, 'application/zip');

describe('imports', () => {
  it('[EXP-3] an export imported into a new, empty tenant reproduces every row of every table and every attachment byte', async () => {
    const target = await createWorkspace(ctx, { name: 'Target' });
    const res = await importInto(target, archive);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.attachments).toBe(2);
    const before = await dumpTenant(ctx, source);
    const after = await dumpTenant(ctx, target);
    expect(Object.keys(after).sort()).toEqual(Object.keys(before).sort());
    for (const table of Object.keys(before)) expect(after[table], table).toEqual(before[table]);
    for (const [id, bytes] of Object.entries(attachments)) {
      expect((await readFile(path.join(storageRoot(ctx.core.config), attachmentKey(target.tenantDatabaseId, id)))).equals(bytes)).toBe(true);
      const res = await fetch(`${ctx.baseUrl}${target.base}/attachments/${id}/content`, { headers: { cookie: target.owner.http.cookie! } });
      expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    }
    // A second import into the same (now full) tenant is refused, and changes nothing.
    const again = await importInto(target, archive);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('tenant_not_empty');
    expect(await dumpTenant(ctx, target)).toEqual(after);
  });

  it('[EXP-3] an import into a tenant that has records is refused (409)', async () => {
    const target = await createWorkspace(ctx);
    await createRecord(target.owner.http, `${target.base}/companies`, { name: 'Déjà là' });
    const res = await importInto(target, archive);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'tenant_not_empty' });
    expect(await tenantQuery(ctx, target, 'SELECT name FROM companies')).toEqual([{ name: 'Déjà là' }]);
  });

  it('[EXP-3] a damaged archive is refused as a whole: no row and no file stays', async () => {
    const target = await createWorkspace(ctx);
    const second = Object.keys(attachments)[1]!;
    const manifest = JSON.parse(entries.get('manifest.json')!.toString('utf8'));
    const entry = manifest.attachments.find((a: { id: string }) => a.id === second).path as string;
    // The last file read is damaged: every table was inserted and the first file stored before.
    const damaged = await rezip(entry, (b) => Buffer.concat([b.subarray(0, -1), Buffer.from([b.at(-1)! ^ 1])]));
    const res = await importInto(target, damaged);
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.code).toBe('import_archive_invalid');
    for (const [table, rows] of Object.entries(await dumpTenant(ctx, target))) if (table !== 'workspace_settings') expect(rows, table).toEqual([]);
    expect(await filesOf(target)).toEqual([]);
    // Not a zip at all, or a row count that lies: refused too.
    expect((await importInto(target, Buffer.from('not a zip'))).body.code).toBe('import_archive_invalid');
    const collaborator = await addMember(ctx, target, 'collaborator');
    expect((await postRaw(ctx, collaborator, `${target.base}/imports`, archive, 'application/zip')).status).toBe(403);
  });

  it('[EXP-3] a CSV made by another tool imports into one table with a column mapping', async () => {
    const target = await createWorkspace(ctx);
    const csv = '\ufeffNom,Prénom,Courriel,Ignorée\r\n"Durand, fils",Zoé,zoe@example.test,x\r\n"Multi\r\nligne",,,\r\nÉté,Ana,,\r\n';
    const mapping = encodeURIComponent(JSON.stringify({ Nom: 'lastName', Prénom: 'firstName', Courriel: 'email' }));
    const res = await postRaw(ctx, target.owner, `${target.base}/imports/csv?table=contacts&mapping=${mapping}`, csv, 'text/csv');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ table: 'contacts', rowsRead: 3, errorCount: 0 });
    const rows = await tenantQuery(ctx, target, 'SELECT last_name, first_name, email FROM contacts ORDER BY last_name');
    expect(rows).toEqual([
      { last_name: 'Durand, fils', first_name: 'Zoé', email: 'zoe@example.test' },
      { last_name: 'Multi\r\nligne', first_name: null, email: null },
      { last_name: 'Été', first_name: 'Ana', email: null },
    ]);
  });

  it('[EXP-3] a bad CSV gives a report per line (field and reason) and writes nothing', async () => {
    const target = await createWorkspace(ctx);
    const company = await createRecord(target.owner.http, `${target.base}/companies`, { name: 'Client' });
    const csv = [
      'client,numero,date,montant',
      `${company.id},F-1,2026-01-10,1000`,
      `${company.id},F-2,2026-13-01,12.50`,
      `,F-3,2026-01-10,500`,
      `00000000-0000-4000-8000-000000000000,F-4,2026-01-10,500`,
      `${company.id},F-1,2026-01-11,700`,
    ].join('\n');
    const mapping = encodeURIComponent(JSON.stringify({ client: 'companyId', numero: 'number', date: 'issueDate', montant: 'amountCents' }));
    const res = await postRaw(ctx, target.owner, `${target.base}/imports/csv?table=invoices&mapping=${mapping}`, csv, 'text/csv');
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('csv_import_invalid');
    const errors = res.body.report.errors as { line: number; field?: string; code: string; message: string }[];
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ line: 3, field: 'issueDate', code: 'invalid_value' }),
        expect.objectContaining({ line: 3, field: 'amountCents', code: 'invalid_value', message: expect.stringContaining('cents') }),
        expect.objectContaining({ line: 4, field: 'companyId', code: 'required' }),
        expect.objectContaining({ line: 5, code: 'unknown_reference' }),
        expect.objectContaining({ line: 6, code: 'duplicate_value' }),
      ]),
    );
    expect(errors.some((e) => e.line === 2)).toBe(false);
    expect(res.body.report).toMatchObject({ rowsRead: 5, errorCount: 5 });
    // Line 2 was valid, but nothing was written.
    expect(await tenantQuery(ctx, target, 'SELECT number FROM invoices')).toEqual([]);
    // A mapping naming a missing column or a required field left out is refused before any line.
    const bad = await postRaw(ctx, target.owner, `${target.base}/imports/csv?table=invoices&mapping=${encodeURIComponent(JSON.stringify({ absent: 'number' }))}`, csv, 'text/csv');
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('csv_mapping_invalid');
    const syntax = await postRaw(ctx, target.owner, `${target.base}/imports/csv?table=companies`, 'name\n"unclosed\n', 'text/csv');
    expect(syntax.body).toMatchObject({ code: 'csv_syntax' });
  });
});
