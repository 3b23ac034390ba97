import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createStaff, registerServers } from '../../../test/factories.ts';
import { storageRoot } from '../../config/config.ts';
import { attachmentKey } from '../workspace/attachments-service.ts';
import { addMember, createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { tableCsv } from './export-writer.ts';
import { csvLine, parseCsv } from './formats.ts';
import { describeTables, readRows } from './tenant-tables.ts';
import { downloadExport, dumpTenant, fillWorkspace, runExport, TRICKY, unzip } from './portability-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;
let attachments: Record<string, Buffer>;
let dump: Record<string, unknown[]>;
let view: Record<string, any>;
let entries: Map<string, Buffer>;
let archive: Buffer;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** Debian's python3 (with python3-openpyxl when installed): an independent reader of our files. */
const PYTHON = '/usr/bin/python3';
const hasPython = spawnSync(PYTHON, ['-c', 'import csv, xml.etree.ElementTree']).status === 0;
const hasOpenpyxl = hasPython && spawnSync(PYTHON, ['-c', 'import openpyxl']).status === 0;
const python = (script: string, input: Buffer | string) => JSON.parse(execFileSync(PYTHON, ['-c', script], { input, maxBuffer: 64 * 1024 ** 2 }).toString('utf8'));

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Export « été »' });
  ({ attachments } = await fillWorkspace(ctx, ws));
  dump = await dumpTenant(ctx, ws);
  view = await runExport(ws);
  const downloaded = await downloadExport(ctx, ws, view.id);
  archive = downloaded.bytes;
  entries = await unzip(downloaded.file);
}, 60_000);
afterAll(async () => ctx?.close());

describe('exports', () => {
  it('[EXP-1] the archive holds every table in CSV, JSON Lines, XML and XLSX, the attachments, a README and a manifest whose hashes match', async () => {
    expect(view).toMatchObject({ state: 'complete', phase: 'complete', progress: { percent: 100 } });
    expect(view.sizeBytes).toBe(archive.length);
    expect(view.sha256).toBe(sha256(archive));
    const manifest = JSON.parse(entries.get('manifest.json')!.toString('utf8'));
    const tables = Object.keys(dump);
    expect(tables).toEqual(expect.arrayContaining(['workspace_settings', 'companies', 'contacts', 'employees', 'invoices', 'payments', 'notes', 'reminders', 'attachments']));
    expect(manifest.tables.map((t: { name: string }) => t.name).sort()).toEqual([...tables].sort());
    for (const table of tables) {
      expect(dump[table]!.length, table).toBeGreaterThan(0);
      const facts = manifest.tables.find((t: { name: string }) => t.name === table);
      expect(facts.rows, table).toBe(dump[table]!.length);
      for (const file of [`csv/${table}.csv`, `json/${table}.jsonl`, `xml/${table}.xml`]) expect(entries.has(file), file).toBe(true);
      const jsonl = entries.get(`json/${table}.jsonl`)!.toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(jsonl).toHaveLength(dump[table]!.length);
    }
    // Every file but the manifest is listed with its true size and SHA-256; nothing else is in the archive.
    expect([...entries.keys()].sort()).toEqual([...manifest.files.map((f: { path: string }) => f.path), 'manifest.json'].sort());
    for (const f of manifest.files) {
      expect(entries.get(f.path)!.length, f.path).toBe(f.size);
      expect(sha256(entries.get(f.path)!), f.path).toBe(f.sha256);
    }
    // The attachments, byte for byte, under attachments/<id>/<file name>.
    expect(manifest.attachments).toHaveLength(2);
    for (const [id, bytes] of Object.entries(attachments)) {
      const entry = manifest.attachments.find((a: { id: string }) => a.id === id);
      expect(entries.get(entry.path)!.equals(bytes)).toBe(true);
    }
    expect(entries.has(`attachments/${Object.keys(attachments)[0]}/Facture été, n°1.pdf`)).toBe(true);
    // The README explains the formats in the member's language.
    expect(entries.get('README.txt')!.toString('utf8')).toMatch(/RFC 4180/);
    const { locale } = await ctx.core.db.selectFrom('users').select('locale').where('id', '=', ws.owner.userId).executeTakeFirstOrThrow();
    expect(entries.get('README.txt')!.toString('utf8')).toMatch(locale === 'fr' ? /^Export Havre de l'espace « Export « été » »/ : /^Havre export of workspace "Export « été »"/);
    // Values: ISO dates and timestamps, integer cents.
    const invoice = JSON.parse(entries.get('json/invoices.jsonl')!.toString('utf8').split('\n')[0]!);
    expect(invoice.amount_cents).toEqual(expect.any(Number));
    expect(invoice.issue_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(invoice.created_at).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?\+00$/);
  });

  it('[EXP-1] every CSV is RFC 4180 with a header row: quotes, commas, line breaks and non-ASCII survive a standard parser', async () => {
    for (const table of Object.keys(dump)) {
      const text = entries.get(`csv/${table}.csv`)!.toString('utf8');
      const records: string[][] = [];
      for await (const r of parseCsv([text])) records.push(r.fields);
      const columns = Object.keys(dump[table]![0] as object);
      expect(records[0], table).toEqual(columns);
      expect(records.length - 1, table).toBe(dump[table]!.length);
    }
    const companies = entries.get('csv/companies.csv')!;
    expect(companies.includes(Buffer.from('\r\n'))).toBe(true);
    const parsed = (await collect(companies.toString('utf8'))).slice(1).map((r) => r[1]);
    expect(parsed).toContain(TRICKY);
    if (hasPython) {
      // Python's csv module, an independent RFC 4180 reader.
      const rows = python('import csv,io,sys,json; print(json.dumps(list(csv.reader(io.StringIO(sys.stdin.read(), newline="")))))', companies) as string[][];
      expect(rows[0]).toContain('registration_id');
      expect(rows.slice(1).map((r) => r[1])).toContain(TRICKY);
      // A null is an empty field; an empty text would be "" (the "Other" company has no city).
      expect(rows.find((r) => r[1] === 'Other')![rows[0]!.indexOf('city')]).toBe('');
    }
  });

  it('[EXP-1] the CSV from PostgreSQL\'s COPY is byte for byte the RFC 4180 CSV of the rows the other formats read; a COPY given up half-way leaves the connection usable', async () => {
    await ctx.app.modules.fleet.connections.withTenantAsAdmin(ws.tenantDatabaseId, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      try {
        await client.query(`SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'iso_8601'`);
        for (const table of await describeTables(client)) {
          let expected = csvLine(table.columns.map((c) => c.name));
          for await (const values of readRows(client, table)) expected += csvLine(values);
          const chunks: Buffer[] = [];
          for await (const chunk of tableCsv(client, table)) chunks.push(chunk);
          expect(Buffer.concat(chunks).toString('utf8'), table.name).toBe(expected);
        }
        // Values at the edges of CSV: empty text (""), null (nothing), a lone \., spaces, quotes, line breaks.
        await client.query(`CREATE TEMP TABLE edge (id int PRIMARY KEY, t text, d date, at timestamptz)`);
        await client.query(`INSERT INTO edge VALUES (1, '', NULL, NULL), (2, NULL, '2024-02-29', '2024-02-29 23:59:59.5+01'), (3, '\\.', NULL, NULL), (4, ' x ', NULL, NULL), (5, E'a"b\\r\\nc\\n', NULL, NULL), (6, '""', NULL, NULL), (7, NULL, NULL, 'infinity'), (8, NULL, NULL, '0044-03-15 12:00:00+00 BC')`);
        const edge = { name: 'edge', primaryKey: ['id'], references: [], columns: [{ name: 'id', type: 'integer', kind: 'integer' as const }, { name: 't', type: 'text', kind: 'text' as const }, { name: 'd', type: 'date', kind: 'date' as const }, { name: 'at', type: 'timestamp with time zone', kind: 'timestamptz' as const }] };
        let expected = csvLine(edge.columns.map((c) => c.name));
        for await (const values of readRows(client, edge)) expected += csvLine(values);
        const chunks: Buffer[] = [];
        for await (const chunk of tableCsv(client, edge)) chunks.push(chunk);
        expect(Buffer.concat(chunks).toString('utf8')).toBe(expected);
        expect(expected).toBe('id,t,d,at\r\n1,"",,\r\n2,,2024-02-29,2024-02-29 22:59:59.5+00\r\n3,\\.,,\r\n4, x ,,\r\n5,"a""b\r\nc\n",,\r\n6,"""""",,\r\n7,,,infinity\r\n8,,,0044-03-15 12:00:00+00 BC\r\n');
        // The timestamps' text reads back as the same instants.
        const back = await client.query<{ same: boolean }>(`SELECT bool_and(x.v::timestamptz = e.at) AS same FROM edge e JOIN (VALUES (2, '2024-02-29 22:59:59.5+00'), (7, 'infinity'), (8, '0044-03-15 12:00:00+00 BC')) x(id, v) USING (id)`);
        expect(back.rows[0]!.same).toBe(true);
        // Many chunks of COPY output; stop reading after the first, then use the connection again.
        await client.query(`CREATE TEMP TABLE big AS SELECT i AS id, repeat('é"x,', 50) || i AS body FROM generate_series(1, 20000) i`);
        const big = { name: 'big', primaryKey: ['id'], references: [], columns: [{ name: 'id', type: 'integer', kind: 'integer' as const }, { name: 'body', type: 'text', kind: 'text' as const }] };
        for await (const chunk of tableCsv(client, big)) {
          expect(chunk.length).toBeGreaterThan(0);
          break;
        }
        expect((await client.query('SELECT count(*)::int AS n FROM big')).rows[0].n).toBe(20000);
      } finally {
        await client.query('ROLLBACK');
      }
    });
  });

  it('[EXP-1] the XML files are well-formed and carry the values; the XLSX workbook opens with one sheet per table', async () => {
    const book = await unzip(entries.get('havre.xlsx')!);
    for (const part of ['[Content_Types].xml', '_rels/.rels', 'xl/workbook.xml', 'xl/_rels/workbook.xml.rels', 'xl/styles.xml', 'xl/worksheets/sheet1.xml']) expect(book.has(part), part).toBe(true);
    const tables = Object.keys(dump);
    if (!hasPython) return;
    const notes = python(
      'import sys,json,xml.etree.ElementTree as E; ns={"h":"https://havre.example/export/1"}; t=E.parse(sys.stdin.buffer).getroot(); print(json.dumps([r.find("h:body",ns).text for r in t.find("h:rows",ns)]))',
      entries.get('xml/notes.xml')!,
    ) as string[];
    expect(notes).toContain(`Note multi-ligne\n${TRICKY}`);
    if (!hasOpenpyxl) return;
    const sheets = python(
      'import sys,io,json,openpyxl; wb=openpyxl.load_workbook(io.BytesIO(sys.stdin.buffer.read()), read_only=True); print(json.dumps({ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}, default=str))',
      entries.get('havre.xlsx')!,
    ) as Record<string, unknown[][]>;
    expect(Object.keys(sheets).sort()).toEqual([...tables].sort());
    for (const table of tables) expect(sheets[table]!.length, table).toBe(dump[table]!.length + 1);
    const header = sheets.companies![0] as string[];
    // openpyxl does not decode ST_Xstring escapes (ECMA-376 22.9.2.19) as Excel and LibreOffice do; decode them here.
    const xstring = (v: unknown) => (typeof v === 'string' ? v.replace(/_x([0-9A-Fa-f]{4})_/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))) : v);
    expect(sheets.companies!.slice(1).map((r) => xstring(r[header.indexOf('name')]))).toContain(TRICKY);
    const invoiceHeader = sheets.invoices![0] as string[];
    expect(sheets.invoices!.slice(1).map((r) => r[invoiceHeader.indexOf('amount_cents')])).toContain(123_456);
    // A formula-looking note stays text.
    const noteHeader = sheets.notes![0] as string[];
    expect(sheets.notes!.slice(1).map((r) => r[noteHeader.indexOf('body')])).toContain('=SUM(A1:A2)');
  });

  it('[EXP-2] progress is visible, the download link expires, and exports and downloads are audited', async () => {
    const list = await ws.owner.http.get(`${ws.base}/exports`);
    expect(list.body.items[0]).toMatchObject({ id: view.id, state: 'complete', progress: { tablesDone: view.progress.tablesTotal, rowsWritten: view.progress.rowsTotal } });
    const link = await ws.owner.http.post(`${ws.base}/exports/${view.id}/download-link`);
    ctx.clock.advance(16 * 60_000);
    try {
      const res = await fetch(`${ctx.baseUrl}${link.body.url}`);
      expect(res.status).toBe(410);
      const forged = await fetch(`${ctx.baseUrl}/api/v1/export-downloads?token=${encodeURIComponent(link.body.url.slice(-40))}`);
      expect(forged.status).toBe(404);
    } finally {
      ctx.clock.advance(-16 * 60_000);
    }
    const actions = (await ctx.core.db.selectFrom('audit_log').select(['action']).where('subject_id', '=', view.id).execute()).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['export.requested', 'export.completed', 'export.download_link', 'export.downloaded']));
  });

  it('[EXP-2] only owners and administrators export: staff and strangers get 404, collaborators 403', async () => {
    const staff = await createStaff(ctx);
    expect((await staff.http.post(`${ws.base}/exports`)).status).toBe(404);
    expect((await staff.http.get(`${ws.base}/exports/${view.id}`)).status).toBe(404);
    expect((await staff.http.post(`${ws.base}/exports/${view.id}/download-link`)).status).toBe(404);
    const stranger = await createWorkspace(ctx);
    expect((await stranger.owner.http.get(`${ws.base}/exports`)).status).toBe(404);
    const collaborator = await addMember(ctx, ws, 'collaborator');
    expect((await collaborator.http.post(`${ws.base}/exports`)).status).toBe(403);
    const admin = await addMember(ctx, ws, 'administrator');
    expect((await runExport(ws, admin)).state).toBe('complete');
  });

  it('[EXP-2] a failure mid-export leaves no archive that looks complete, and the export is failed', async () => {
    const other = await createWorkspace(ctx);
    const { attachments: files } = await fillWorkspace(ctx, other);
    // Damage one stored attachment: the export reaches it after every table is written, then stops.
    const file = path.join(storageRoot(ctx.core.config), attachmentKey(other.tenantDatabaseId, Object.keys(files)[1]!));
    await chmod(file, 0o644);
    await writeFile(file, Buffer.from('damaged'));
    const failed = await runExport(other);
    expect(failed).toMatchObject({ state: 'failed', sizeBytes: null, sha256: null, error: expect.any(String) });
    const dir = path.join(ctx.core.config.home, 'exports', other.tenantId);
    expect(await readdir(dir)).toEqual([]);
    const row = await ctx.core.db.selectFrom('exports').select(['error']).where('id', '=', failed.id).executeTakeFirstOrThrow();
    expect(row.error).toMatch(/does not match its record/);
    expect((await other.owner.http.post(`${other.base}/exports/${failed.id}/download-link`)).status).toBe(409);
  });

  it('[EXP-2] a node killed mid-export: its partial file never looks complete, the lapsed export becomes failed and a new one can start', async () => {
    const id = randomUUID();
    await ctx.core.db.insertInto('exports').values({ id, tenant_id: ws.tenantId, requested_by: null, locale: 'fr', state: 'running', worker_id: 'dead-node', lease_until: new Date(Date.now() + 60_000), started_at: ctx.clock.now() }).execute();
    const dir = path.join(ctx.core.config.home, 'exports', ws.tenantId);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `${id}.zip.partial`), Buffer.from('PK\u0003\u0004 half an archive'));
    // While its lease holds, it is running: a second export is refused.
    expect((await ws.owner.http.post(`${ws.base}/exports`)).status).toBe(409);
    await ctx.core.db.updateTable('exports').set({ lease_until: new Date(Date.now() - 1000) }).where('id', '=', id).execute();
    expect(await ctx.app.modules.portability.exports.sweep()).toMatchObject({ abandoned: 1 });
    expect((await ws.owner.http.get(`${ws.base}/exports/${id}`)).body.state).toBe('failed');
    expect((await readdir(dir)).filter((f) => f.startsWith(id))).toEqual([]);
    expect((await runExport(ws)).state).toBe('complete');
  });

  it('[EXP-2] the owner of a cancelled tenant can still export it during the grace period (TEN-4)', async () => {
    const other = await createWorkspace(ctx);
    await ctx.app.modules.tenants.service.transition(other.tenantId, 'cancelled', { actor: { type: 'system' }, reason: 'test' });
    const done = await runExport(other);
    expect(done.state).toBe('complete');
    const { file } = await downloadExport(ctx, other, done.id);
    expect((await unzip(file)).has('manifest.json')).toBe(true);
  });
});

async function collect(text: string): Promise<string[][]> {
  const out: string[][] = [];
  for await (const r of parseCsv([text])) out.push(r.fields);
  return out;
}
