/**
 * A large upload is written to storage while it is still arriving, never held whole in memory.
 * Measuring the process's memory proved too noisy here (client and server share the process, and
 * freed buffers are counted for a while after a GC); instead the client checks, before sending
 * each next megabyte, that the server's in-progress file already holds all but the last few
 * megabytes sent (socket and stream buffers in between). A server that buffered the body first
 * would never let that file grow, and the upload would stall.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { storageRoot } from '../../config/config.ts';
import { createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

const MB = 1024 * 1024;
const SIZE = 24 * MB;
/** Bytes allowed between the client's last write and the server's file (kernel and stream buffers). */
const IN_FLIGHT = 8 * MB;

/** The size of the upload being written in the tenant's area (its `.partial` file), 0 if none yet. */
async function partialBytes(): Promise<number> {
  const area = path.join(storageRoot(ctx.core.config), 'tenants', ws.tenantDatabaseId, 'attachments');
  const partial = (await readdir(area).catch(() => [] as string[])).find((f) => f.endsWith('.partial'));
  return partial ? (await stat(path.join(area, partial)).catch(() => ({ size: 0 }))).size : 0;
}

describe('large attachments', () => {
  it('[APP-1] a 24 MB video is stored while it arrives (streamed, not buffered) and read back identical', async () => {
    const block = randomBytes(MB);
    block.set(Buffer.concat([Buffer.from([0, 0, 0, 0x18]), Buffer.from('ftypisom'), Buffer.from([0, 0, 2, 0]), Buffer.from('isomiso2')]));
    const hash = createHash('sha256');
    for (let sent = 0; sent < SIZE; sent += MB) hash.update(block);
    const sha256 = hash.digest('hex');
    let stalls = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (let sent = 0; sent < SIZE; sent += MB) {
        // Wait (at most 5 s) until the server has written all but IN_FLIGHT bytes of what was sent.
        for (let i = 0; sent - (await partialBytes()) > IN_FLIGHT; i++) {
          if (i === 500) throw new Error(`the server holds ${sent} bytes sent but wrote only ${await partialBytes()}`);
          stalls++;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        yield Buffer.from(block);
      }
    }

    const url = new URL(`${ctx.baseUrl}${ws.base}/attachments?fileName=visite.mp4`);
    const headers = { cookie: ws.owner.http.cookie!, 'x-csrf-token': ws.owner.http.csrfToken!, 'content-type': 'video/mp4', 'content-length': String(SIZE) };
    const req = http.request(url, { method: 'POST', headers });
    const answer = new Promise<http.IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject));
    await pipeline(Readable.from(body()), req);
    const res = await answer;
    const text = (await res.toArray()).join('');
    expect(res.statusCode, text).toBe(201);
    const created = JSON.parse(text);
    expect(created).toMatchObject({ sizeBytes: SIZE, sha256 });
    expect(stalls).toBeLessThan(500);

    const download = await fetch(`${ctx.baseUrl}${ws.base}/attachments/${created.id}/content`, { headers: { cookie: ws.owner.http.cookie! } });
    expect(download.headers.get('content-length')).toBe(String(SIZE));
    const back = createHash('sha256');
    for await (const chunk of download.body!) back.update(chunk);
    expect(back.digest('hex')).toBe(sha256);
    expect(await tenantQuery(ctx, ws, 'SELECT size_bytes::int AS n FROM attachments')).toEqual([{ n: SIZE }]);
  });
});
