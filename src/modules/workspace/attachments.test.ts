import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readdir, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, registerServers, type Member } from '../../../test/factories.ts';
import { storageRoot } from '../../config/config.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { contentDisposition } from './attachments-routes.ts';
import { attachmentKey, createAttachmentService } from './attachments-service.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

const MAX_BYTES = 64 * 1024;

let ctx: TestContext;
let ws: Workspace;
let company: Record<string, any>;

beforeAll(async () => {
  ctx = await createTestContext({ config: { workspace: { attachments: { maxBytes: MAX_BYTES } } } });
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
  company = await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Dupont SARL' });
});
afterAll(async () => ctx?.close());

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const concat = (...parts: (string | Uint8Array)[]) => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** Test files with the right magic numbers, and random bytes after them (several chunks, past the sniff window). */
const files = {
  pdf: concat('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', randomBytes(40_000), '\n%%EOF\n'),
  png: concat(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), randomBytes(30_000)),
  mp4: concat(Buffer.from([0, 0, 0, 0x18]), 'ftypisom', Buffer.from([0, 0, 2, 0]), 'isomiso2', randomBytes(50_000)),
};

/** The tenant's attachment files on disk (complete and partial), relative to its area. */
async function filesInArea(): Promise<string[]> {
  const dir = path.join(storageRoot(ctx.core.config), 'tenants', ws.tenantDatabaseId, 'attachments');
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

async function rowCount(): Promise<number> {
  return (await tenantQuery<{ n: number }>(ctx, ws, 'SELECT count(*)::int AS n FROM attachments'))[0]!.n;
}

/** POSTs raw bytes (or a stream) as an upload, with the member's session. */
async function upload(member: Member, query: string, body: Uint8Array | ReadableStream<Uint8Array> | undefined, contentType?: string, base = ws.base): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { cookie: member.http.cookie!, 'x-csrf-token': member.http.csrfToken! };
  if (contentType) headers['content-type'] = contentType;
  const res = await fetch(`${ctx.baseUrl}${base}/attachments?${query}`, { method: 'POST', headers, body, duplex: 'half' } as RequestInit);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

async function download(member: Member, id: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(`${ctx.baseUrl}${ws.base}/attachments/${id}/content`, { headers: { cookie: member.http.cookie!, ...headers } });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

/** A body sent chunked (no Content-Length), `total` bytes in 16 KiB chunks starting with `head`. */
function chunkedBody(head: Buffer, total: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const chunk = sent === 0 ? concat(head, randomBytes(16_384 - head.length)) : randomBytes(Math.min(16_384, total - sent));
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

describe('workspace attachments', () => {
  it('[APP-1] a PDF, a PNG and an MP4 are uploaded streamed and downloaded byte-identical', async () => {
    const uploads: [keyof typeof files, string, string][] = [
      ['pdf', 'application/pdf', 'Facture été 2026 (n°1).pdf'],
      ['png', 'image/png', 'photo.png'],
      ['mp4', 'video/mp4', 'visite chantier.mp4'],
    ];
    for (const [kind, type, name] of uploads) {
      const bytes = files[kind];
      const res = await upload(ws.owner, `fileName=${encodeURIComponent(name)}&companyId=${company.id}`, bytes, type);
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ fileName: name, contentType: type, sizeBytes: bytes.length, sha256: sha256(bytes), companyId: company.id, contactId: null, uploadedByUserId: ws.owner.userId });
      expect(res.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);

      const got = await download(ws.owner, res.body.id);
      expect(got.status).toBe(200);
      expect(sha256(got.bytes)).toBe(sha256(bytes));
      expect(got.headers.get('content-type')).toBe(type);
      expect(got.headers.get('content-length')).toBe(String(bytes.length));
      expect(got.headers.get('content-disposition')).toBe(contentDisposition(name));
      expect(got.headers.get('x-content-type-options')).toBe('nosniff');
      expect(got.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
      const again = await download(ws.owner, res.body.id, { 'if-none-match': `"${sha256(bytes)}"` });
      expect(again.status).toBe(304);
      expect(again.bytes.length).toBe(0);
      const head = await fetch(`${ctx.baseUrl}${ws.base}/attachments/${res.body.id}/content`, { method: 'HEAD', headers: { cookie: ws.owner.http.cookie! } });
      expect([head.status, head.headers.get('content-length')]).toEqual([200, String(bytes.length)]);

      expect((await ws.owner.http.get(`${ws.base}/attachments/${res.body.id}`)).body).toEqual(res.body);
    }
    const list = await ws.owner.http.get(`${ws.base}/attachments?companyId=${company.id}&sort=fileName`);
    expect(list.body.items.map((a: any) => a.fileName)).toEqual(['Facture été 2026 (n°1).pdf', 'photo.png', 'visite chantier.mp4']);
    expect((await ws.owner.http.get(`${ws.base}/attachments?contentType=image/png`)).body.items.map((a: any) => a.fileName)).toEqual(['photo.png']);
    expect(contentDisposition('Facture été 2026 (n°1).pdf')).toBe(`attachment; filename="Facture _t_ 2026 (n_1).pdf"; filename*=UTF-8''Facture%20%C3%A9t%C3%A9%202026%20%28n%C2%B01%29.pdf`);
    // Each file is in the tenant's own area, under the attachment's id, and nothing else is there.
    expect(await filesInArea()).toEqual(list.body.items.map((a: any) => a.id).sort());
  });

  it('[APP-1] an upload over the size limit is cut off with 413: no row, no file', async () => {
    const rows = await rowCount();
    const before = await filesInArea();
    // Declared too large by its Content-Length: refused before a byte is read.
    const declared = await upload(ws.owner, 'fileName=big.pdf', concat('%PDF-1.7\n', randomBytes(MAX_BYTES + 1)), 'application/pdf');
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ code: 'attachment_too_large', maxBytes: MAX_BYTES });
    // Streamed without a length: counted, and cut off past the limit.
    const streamed = await upload(ws.owner, 'fileName=big.mp4', chunkedBody(files.mp4.subarray(0, 32), 16 * MAX_BYTES), 'video/mp4');
    expect(streamed.status).toBe(413);
    expect(streamed.body.code).toBe('attachment_too_large');
    // Exactly the limit is fine.
    const exact = await upload(ws.owner, 'fileName=exact.png', concat(files.png.subarray(0, 8), randomBytes(MAX_BYTES - 8)), 'image/png');
    expect(exact.status).toBe(201);
    expect(exact.body.sizeBytes).toBe(MAX_BYTES);
    expect(await rowCount()).toBe(rows + 1);
    expect(await filesInArea()).toEqual([...before, exact.body.id].sort());
  });

  it('[APP-1] the declared type must be allowed (415 content_type_not_allowed) and match the first bytes (415 content_type_mismatch)', async () => {
    const rows = await rowCount();
    const before = await filesInArea();
    const refused: [Buffer, string | undefined, string][] = [
      [files.png, 'application/pdf', 'content_type_mismatch'],
      [files.pdf, 'video/mp4', 'content_type_mismatch'],
      [concat('MZ\x90\x00', randomBytes(100)), 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'content_type_mismatch'],
      [concat('hello\x00world'), 'text/plain', 'content_type_mismatch'],
      [concat('caf\xe9 au lait'), 'text/csv', 'content_type_mismatch'],
      [files.png.subarray(0, 4), 'image/png', 'content_type_mismatch'],
      [concat('<html><script>alert(1)</script></html>'), 'text/html', 'content_type_not_allowed'],
      [concat('MZ\x90\x00'), 'application/x-msdownload', 'content_type_not_allowed'],
      [concat('#!/bin/sh'), 'application/octet-stream', 'content_type_not_allowed'],
      [concat('a;b'), 'text/csv; charset=iso-8859-1', 'content_type_not_allowed'],
      [concat('{"a":1}'), 'application/json', 'content_type_not_allowed'],
      [concat('a=b'), undefined, 'content_type_not_allowed'],
    ];
    for (const [bytes, type, code] of refused) {
      const res = await upload(ws.owner, 'fileName=f', bytes, type);
      expect([res.status, res.body.code], `${type}`).toEqual([415, code]);
    }
    expect(await rowCount()).toBe(rows);
    expect(await filesInArea()).toEqual(before);

    // Text: UTF-8 (a character cut at the end of the sniffed window is fine), case-insensitive type.
    const csv = concat('nom;ville\n', Buffer.from('Zoé;Montréal\n'.repeat(1000)));
    const ok = await upload(ws.owner, 'fileName=clients.csv', csv, 'Text/CSV; charset=UTF-8');
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body.contentType).toBe('text/csv');
    const got = await download(ws.owner, ok.body.id);
    expect(got.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(got.bytes.equals(csv)).toBe(true);
  });

  it('[APP-1] a bad subject or file name is a 400 and leaves nothing', async () => {
    const rows = await rowCount();
    const before = await filesInArea();
    const cases: [string, number, string][] = [
      [`fileName=a.pdf&companyId=${randomUUID()}`, 400, 'unknown_reference'],
      [`fileName=a.pdf&invoiceId=${randomUUID()}`, 400, 'unknown_reference'],
      [`fileName=a.pdf&companyId=${company.id}&contactId=${randomUUID()}`, 400, 'one_subject_at_most'],
      ['fileName=a.pdf&companyId=not-a-uuid', 400, 'invalid_request'],
      ['fileName=a.pdf&religion=x', 400, 'invalid_request'],
      ['fileName=../../etc/passwd', 400, 'invalid_file_name'],
      ['fileName=a%0Ab.pdf', 400, 'invalid_file_name'],
      [`fileName=${'x'.repeat(256)}`, 400, 'invalid_file_name'],
      ['fileName=%20%20', 400, 'invalid_file_name'],
      ['companyId=' + String(company.id), 400, 'invalid_request'],
    ];
    for (const [query, status, code] of cases) {
      const res = await upload(ws.owner, query, files.pdf, 'application/pdf');
      expect([res.status, res.body.code], query).toEqual([status, code]);
    }
    expect(await rowCount()).toBe(rows);
    expect(await filesInArea()).toEqual(before);
  });

  it('[APP-1] every member role uploads, downloads and deletes; a delete removes the row and the file', async () => {
    const collaborator = await addMember(ctx, ws, 'collaborator');
    const res = await upload(collaborator, 'fileName=note.txt', concat('Rappeler lundi.\n'), 'text/plain');
    expect(res.status).toBe(201);
    expect((await download(collaborator, res.body.id)).bytes.toString()).toBe('Rappeler lundi.\n');
    expect(await filesInArea()).toContain(res.body.id);
    expect((await collaborator.http.delete(`${ws.base}/attachments/${res.body.id}`)).status).toBe(204);
    expect(await tenantQuery(ctx, ws, 'SELECT id FROM attachments WHERE id = $1', [res.body.id])).toEqual([]);
    expect(await filesInArea()).not.toContain(res.body.id);
    expect((await collaborator.http.get(`${ws.base}/attachments/${res.body.id}`)).body.code).toBe('attachment_not_found');
    expect((await download(collaborator, res.body.id)).status).toBe(404);
    expect((await collaborator.http.delete(`${ws.base}/attachments/${res.body.id}`)).status).toBe(404);
    // Attachments are never created or changed through the generic JSON routes.
    expect((await collaborator.http.post(`${ws.base}/attachments?fileName=x`, { fileName: 'x' })).body.code).toBe('content_type_not_allowed');
    expect((await collaborator.http.patch(`${ws.base}/attachments/${res.body.id}`, { fileName: 'x' })).body.code).toBe('route_not_found');
  });

  it('[APP-1] an upload cut off by the client leaves no row and no file', async () => {
    const rows = await rowCount();
    const before = await filesInArea();
    const url = new URL(`${ctx.baseUrl}${ws.base}/attachments?fileName=cut.pdf`);
    const req = http.request(url, { method: 'POST', headers: { cookie: ws.owner.http.cookie!, 'x-csrf-token': ws.owner.http.csrfToken!, 'content-type': 'application/pdf', 'content-length': '60000' } });
    req.on('error', () => {});
    req.write(files.pdf.subarray(0, 20_000));
    await new Promise((resolve) => setTimeout(resolve, 200));
    req.destroy();
    // The server notices the abort, then removes its partial file.
    for (let i = 0; i < 50 && (await readdir(path.join(storageRoot(ctx.core.config), 'tenants', ws.tenantDatabaseId, 'attachments'))).some((f) => f.endsWith('.partial')); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await filesInArea()).toEqual(before);
    expect(await rowCount()).toBe(rows);
  });

  it('[APP-1] the orphan sweep removes old files without a row (and interrupted writes), and keeps the others', async () => {
    const storage = createFsStorage(storageRoot(ctx.core.config));
    const service = createAttachmentService({
      access: ctx.app.modules.workspace.access,
      storage,
      withTenant: (id, fn) => ctx.app.modules.fleet.connections.withTenant(id, fn),
      clock: ctx.clock,
      maxBytes: MAX_BYTES,
      logger: ctx.core.logger,
    });
    const area = path.join(storageRoot(ctx.core.config), 'tenants', ws.tenantDatabaseId, 'attachments');
    const age = async (name: string) => {
      const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
      await utimes(path.join(area, name), twoHoursAgo, twoHoursAgo);
    };
    // A file whose row is gone with its company (cascade), an old orphan (a kill between storing and
    // INSERT), a young orphan (an upload about to INSERT), the remains of a killed write, a kept file.
    const doomed = await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Gone' });
    const cascaded = (await upload(ws.owner, `fileName=c.png&companyId=${doomed.id}`, files.png, 'image/png')).body.id as string;
    expect((await ws.owner.http.delete(`${ws.base}/companies/${doomed.id}`)).status).toBe(204);
    const kept = (await upload(ws.owner, 'fileName=k.png', files.png, 'image/png')).body.id as string;
    const oldOrphan = randomUUID();
    const youngOrphan = randomUUID();
    const chunks = async function* () {
      yield files.png;
    };
    await storage.put(attachmentKey(ws.tenantDatabaseId, oldOrphan), chunks());
    await storage.put(attachmentKey(ws.tenantDatabaseId, youngOrphan), chunks());
    await writeFile(path.join(area, `${randomUUID()}.0011223344556677.partial`), 'half');
    for (const name of await readdir(area)) if (name !== youngOrphan) await age(name);

    const result = await service.sweepOrphans(ws.tenantDatabaseId, new Date(Date.now() - 3_600_000));
    expect(result).toMatchObject({ removed: 2, incomplete: 1 });
    const left = await filesInArea();
    expect(left).toContain(kept);
    expect(left).toContain(youngOrphan);
    expect(left).not.toContain(oldOrphan);
    expect(left).not.toContain(cascaded);
    expect(left.filter((f) => f.endsWith('.partial'))).toEqual([]);
    // Every attachment with a row still has its file.
    const ids = (await tenantQuery<{ id: string }>(ctx, ws, 'SELECT id::text AS id FROM attachments')).map((r) => r.id);
    for (const id of ids) expect(left).toContain(id);
    await storage.delete(attachmentKey(ws.tenantDatabaseId, youngOrphan));
  });

  it('[TEN-1] a member of another customer gets 404 tenant_not_found on every attachment route, and nothing changes', async () => {
    const mine = await upload(ws.owner, 'fileName=secret.pdf', files.pdf, 'application/pdf');
    expect(mine.status).toBe(201);
    const stranger = await createMember(ctx);
    const id = mine.body.id as string;
    const answers = [
      await upload(stranger, 'fileName=x.pdf', files.pdf, 'application/pdf'),
      await upload(stranger, 'fileName=x.pdf', concat('<html>'), 'text/html'),
      await upload(stranger, 'fileName=x.pdf', concat('%PDF-', randomBytes(MAX_BYTES * 2)), 'application/pdf'),
      await stranger.http.get(`${ws.base}/attachments`),
      await stranger.http.get(`${ws.base}/attachments/${id}`),
      await stranger.http.get(`${ws.base}/attachments/${id}/content`),
      await stranger.http.delete(`${ws.base}/attachments/${id}`),
    ];
    for (const res of answers) expect([res.status, res.body?.code]).toEqual([404, 'tenant_not_found']);
    expect(sha256((await download(ws.owner, id)).bytes)).toBe(sha256(files.pdf));
  });

  it('[APP-1] the OpenAPI document lists the attachment routes, the upload body as binary', async () => {
    const spec = (await ws.owner.http.get('/api/openapi.json')).body;
    const collection = spec.paths['/api/v1/tenants/{id}/attachments'];
    expect(Object.keys(collection).sort()).toEqual(['get', 'post']);
    expect(collection.post.requestBody.content['application/pdf'].schema).toEqual({ type: 'string', format: 'binary' });
    expect(collection.post.requestBody.content['video/mp4']).toBeDefined();
    expect(collection.post.requestBody.content['application/json']).toBeUndefined();
    expect(collection.post.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['fileName', 'companyId', 'invoiceId']));
    expect(Object.keys(collection.post.responses)).toContain('201');
    expect(Object.keys(spec.paths['/api/v1/tenants/{id}/attachments/{recordId}']).sort()).toEqual(['delete', 'get']);
    expect(spec.paths['/api/v1/tenants/{id}/attachments/{recordId}/content'].get.responses['200'].content['image/png'].schema.format).toBe('binary');
  });
});
