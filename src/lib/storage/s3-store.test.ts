/**
 * The S3 driver against a real local S3 server: s3rver (npm), which has NO Object Lock.
 *
 * What s3rver 3.7.1 does, found by experiment (the last test pins these findings, so that a new
 * s3rver version that changes them fails here and this comment gets updated):
 * - GetObjectLockConfiguration → 501 NotImplemented; PutObjectLockConfiguration → 405. So check()
 *   refuses its buckets, which is what Havre must do on any store without Object Lock.
 * - PutObject and CreateMultipartUpload accept the x-amz-object-lock-mode / -retain-until-date
 *   headers and ignore them; DeleteObject then deletes the "locked" object. User metadata is kept.
 * - If-None-Match: * on PutObject / CompleteMultipartUpload is ignored: the object is overwritten.
 * - GetObjectRetention → 501, PutObjectRetention → 405, ListObjectVersions → 405, no versioning
 *   (no VersionId). AbortMultipartUpload → 405: the parts of a failed upload stay in s3rver's
 *   private uploads directory (never listed nor readable).
 * - Range `bytes=N-` with N ≥ size → 416; `bytes=0-` on an empty object answers a bogus 1 byte.
 * - ListObjectsV2 continuation tokens are DES-encrypted, which OpenSSL 3 (Node ≥ 17) disables: a
 *   second page is a 500. s3rver therefore runs in a child process with --openssl-legacy-provider.
 *
 * So here the driver's own refusals are what is tested (write once by HeadObject, delete before
 * the date from the metadata date), plus the exact lock headers it sends. Only a real
 * object-locking store (AWS S3, MinIO with object lock) can prove:
 * 1. check() passing on a bucket with Object Lock enabled (tested here with a fake client only);
 * 2. the store itself refusing to delete or overwrite a locked version before its retain-until
 *    date, whatever the credentials (COMPLIANCE mode) — the server-side half of BKP-6;
 * 3. If-None-Match: * refusing a concurrent second put atomically (412 → StorageKeyExistsError),
 *    where the HeadObject pre-check leaves a race;
 * 4. PutObjectRetention extending a lock, and GetObjectRetention / the retain-until header being
 *    the date stat and delete use after an extension (here: the metadata date only);
 * 5. delete by VersionId really removing the bytes, and deleteMutable purging every version and
 *    delete marker of a key escrow object on a versioned bucket (crypto-shredding, BKP-7);
 * 6. the Object Lock checksum requirement being met by the SDK's CRC32 on PutObject/UploadPart,
 *    and a failed multipart upload being aborted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, GetObjectCommand, GetObjectLockConfigurationCommand, GetObjectRetentionCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand, PutObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../clock.ts';
import { ObjectLockedError, type BackupStore, type LockedObject } from './backup-store.ts';
import { createS3Store, s3ClientFrom, type S3StoreOptions } from './s3-store.ts';
import { InvalidStorageKeyError, StorageKeyExistsError, StorageNotFoundError } from './storage.ts';

const BUCKET = 'havre-backups';
const MiB = 1024 * 1024;
const DAY = 86_400_000;
const start = new Date('2026-03-01T10:00:00.000Z');
const in30Days = new Date(start.getTime() + 30 * DAY);

const SERVER = `
  const S3rver = require('s3rver');
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[1], configureBuckets: [{ name: ${JSON.stringify(BUCKET)} }] });
  server.run().then(({ port }) => process.send({ port }), (err) => { console.error(err); process.exit(1); });
  process.on('message', () => server.close().then(() => process.exit(0)));
  process.on('disconnect', () => process.exit(0));
`;

let dataDir: string;
let server: ChildProcess;
let client: S3Client;
/** Every request the client sent: the command and its HTTP headers (the lock headers s3rver ignores). */
let requests: Array<{ command: string; headers: Record<string, string> }> = [];
let clock: ReturnType<typeof fixedClock>;
let testNumber = 0;
let prefix: string;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'havre-s3rver-'));
  const projectRoot = fileURLToPath(new URL('../../..', import.meta.url));
  server = spawn(process.execPath, ['--openssl-legacy-provider', '-e', SERVER, dataDir], { cwd: projectRoot, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [{ port }] = (await once(server, 'message')) as [{ port: number }];
  client = s3ClientFrom({ region: 'eu-west-3', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      requests.push({ command: context.commandName ?? '', headers: { ...request.headers } });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'captureRequests' },
  );
});

afterAll(async () => {
  client?.destroy();
  if (server && server.exitCode === null) {
    const exited = once(server, 'exit');
    server.send('close');
    await exited;
  }
  await rm(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  requests = [];
  clock = fixedClock(start);
  prefix = `test-${++testNumber}`; // one area of the bucket per test
});

const storeWith = (options: Partial<S3StoreOptions> = {}): BackupStore => createS3Store({ name: 'de', bucket: BUCKET, prefix, client, clock, ...options });

async function* chunks(...parts: Array<string | Buffer>): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield typeof part === 'string' ? Buffer.from(part) : part;
}

/** `total` pseudo-random bytes in 64 KiB chunks, and their SHA-256. */
function randomSource(total: number): { source: AsyncGenerator<Uint8Array>; sha256: string } {
  const data = randomBytes(total);
  async function* source() {
    for (let i = 0; i < total; i += 64 * 1024) yield new Uint8Array(data.subarray(i, i + 64 * 1024));
  }
  return { source: source(), sha256: createHash('sha256').update(data).digest('hex') };
}

async function listed(store: BackupStore, listPrefix: string): Promise<LockedObject[]> {
  const out: LockedObject[] = [];
  for await (const object of store.list(listPrefix)) out.push(object);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

const sent = (command: string) => requests.filter((r) => r.command === command);
const KEY = 'tenants/t1/backups/2026-03-01.dump';

describe('S3 backup store (s3rver, no Object Lock)', () => {
  it('[BKP-6] check() refuses a bucket without Object Lock: Havre will not store backups there', async () => {
    const refusal = /bucket havre-backups has no Object Lock: Havre refuses to store backups there; create the bucket with Object Lock enabled/;
    await expect(storeWith().check()).rejects.toThrow(refusal);
    await expect(createS3Store({ name: 'de', bucket: 'no-such-bucket', client, clock }).check()).rejects.toThrow(/bucket no-such-bucket has no Object Lock/);
    expect(sent('GetObjectLockConfigurationCommand')).toHaveLength(2);
  });

  it('check() accepts only Object Lock "Enabled" without a default retention (fake client: s3rver has no Object Lock)', async () => {
    const answering = (answer: object) => ({ send: async () => answer }) as unknown as S3Client;
    const store = (answer: object) => createS3Store({ name: 'de', bucket: 'b', client: answering(answer), clock });
    await expect(store({ ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled' } }).check()).resolves.toBeUndefined();
    await expect(store({}).check()).rejects.toThrow(/bucket b has no Object Lock/);
    const withDefault = { ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } } } };
    await expect(store(withDefault).check()).rejects.toThrow(/default retention rule.*crypto-shredding/);
  });

  it('[BKP-6] streams a multi-MB object as a multipart upload locked in compliance mode, and reads it back byte-identical', async () => {
    const store = storeWith({ partSize: 5 * MiB, queueSize: 2 });
    const total = 12 * MiB + 123;
    const { source, sha256 } = randomSource(total);
    expect(await store.put(KEY, source, { retainUntil: in30Days })).toEqual({ size: total });

    // The lock and the write-once condition are asked of the store (which a locking store enforces).
    const [create] = sent('CreateMultipartUploadCommand');
    expect(create?.headers).toMatchObject({ 'x-amz-object-lock-mode': 'COMPLIANCE', 'x-amz-object-lock-retain-until-date': '2026-03-31T10:00:00Z', 'x-amz-meta-havre-retain-until': in30Days.toISOString() });
    expect(sent('UploadPartCommand')).toHaveLength(3);
    expect(sent('CompleteMultipartUploadCommand')[0]?.headers['if-none-match']).toBe('*');
    expect(sent('PutObjectCommand')).toEqual([]);

    const { body, size } = await store.get(KEY);
    expect(size).toBe(total);
    expect(createHash('sha256').update(await buffer(body)).digest('hex')).toBe(sha256);
    // The read-back of a backup copy (BKP-3): every byte fetched again and hashed.
    expect(await store.digest(KEY)).toEqual({ size: total, sha256 });
    await expect(store.digest('tenants/t1/none')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await store.stat(KEY)).toMatchObject({ key: KEY, size: total, retainUntil: in30Days });
    // The object lives under the location's prefix in the bucket.
    expect((await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${prefix}/${KEY}` }))).ContentLength).toBe(total);
  });

  it('[BKP-6] stores a small object with one PutObject carrying the lock (rounded up to the second S3 keeps) and If-None-Match', async () => {
    const store = storeWith();
    const withMillis = new Date('2026-03-31T10:00:00.250Z');
    expect(await store.put(KEY, chunks('small ', 'dump'), { retainUntil: withMillis })).toEqual({ size: 10 });
    expect(sent('PutObjectCommand')[0]?.headers).toMatchObject({ 'if-none-match': '*', 'x-amz-object-lock-mode': 'COMPLIANCE', 'x-amz-object-lock-retain-until-date': '2026-03-31T10:00:01Z', 'x-amz-meta-havre-retain-until': '2026-03-31T10:00:01.000Z' });
    expect((await store.stat(KEY))?.retainUntil).toEqual(new Date('2026-03-31T10:00:01.000Z'));
    expect(await text((await store.get(KEY)).body)).toBe('small dump');
  });

  it('[BKP-6] refuses to overwrite a stored object, although s3rver ignores If-None-Match', async () => {
    const store = storeWith();
    await store.put(KEY, chunks('first'), { retainUntil: in30Days });
    await expect(store.put(KEY, chunks('second'), { retainUntil: in30Days })).rejects.toBeInstanceOf(StorageKeyExistsError);
    expect(await text((await store.get(KEY)).body)).toBe('first');
    await expect(store.put('keys/t1', chunks('x'), { retainUntil: in30Days })).rejects.toBeInstanceOf(InvalidStorageKeyError);
  });

  it('[BKP-6] refuses to delete an object before its retain-until date (client-side: s3rver enforces no lock)', async () => {
    const store = storeWith();
    await store.put(KEY, chunks('locked'), { retainUntil: in30Days });
    clock.set(new Date(in30Days.getTime() - 1));
    const refusal = await store.delete(KEY).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ObjectLockedError);
    expect((refusal as ObjectLockedError).retainUntil).toEqual(in30Days);
    expect(sent('DeleteObjectCommand')).toEqual([]);
    expect(await text((await store.get(KEY)).body)).toBe('locked');

    clock.set(in30Days);
    expect(await store.delete(KEY)).toBe(true);
    expect(await store.stat(KEY)).toBeUndefined();
    expect(await store.delete(KEY)).toBe(false);
  });

  it('[BKP-6] extendRetention never shortens a lock, and fails loudly where the store cannot extend it', async () => {
    const store = storeWith();
    await store.put(KEY, chunks('x'), { retainUntil: in30Days });
    // Earlier or equal: nothing is asked of the store (s3rver would answer 405 if it were).
    await store.extendRetention(KEY, new Date(start.getTime() + 10 * DAY));
    await store.extendRetention(KEY, in30Days);
    expect(sent('PutObjectRetentionCommand')).toEqual([]);
    // Later: asked in compliance mode; s3rver has no retention API, so the driver says so instead of pretending.
    const in90Days = new Date(start.getTime() + 90 * DAY);
    await expect(store.extendRetention(KEY, in90Days)).rejects.toThrow(/could not extend the lock of .* it needs an Object Lock bucket/);
    expect(sent('PutObjectRetentionCommand')).toHaveLength(1);
    expect((await store.stat(KEY))?.retainUntil).toEqual(in30Days);
    await expect(store.extendRetention('tenants/t1/backups/none', in90Days)).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(store.extendRetention('keys/t1', in90Days)).rejects.toBeInstanceOf(InvalidStorageKeyError);
  });

  it('[BKP-6] a put whose source fails mid-stream rethrows its error and leaves nothing visible', async () => {
    const store = storeWith({ partSize: 5 * MiB });
    async function* failing(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 12; i++) yield Buffer.alloc(MiB, i);
      throw new Error('dump failed');
    }
    await expect(store.put(KEY, failing(), { retainUntil: in30Days })).rejects.toThrow('dump failed');
    expect(sent('UploadPartCommand').length).toBeGreaterThanOrEqual(1); // parts were stored before the failure
    expect(await store.stat(KEY)).toBeUndefined();
    await expect(store.get(KEY)).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await listed(store, '')).toEqual([]);
    // The key is free: the unfinished upload does not count as an object.
    await store.put(KEY, chunks('whole'), { retainUntil: in30Days });
    expect(await text((await store.get(KEY)).body)).toBe('whole');
  });

  it('reads from a byte offset with a Range request, for resumed downloads', async () => {
    const store = storeWith();
    await store.put(KEY, chunks('0123456789'), { retainUntil: in30Days });
    const from4 = await store.get(KEY, { start: 4 });
    expect(from4.size).toBe(10);
    expect(await text(from4.body)).toBe('456789');
    expect(sent('GetObjectCommand').at(-1)?.headers.range).toBe('bytes=4-');
    const atEnd = await store.get(KEY, { start: 10 });
    expect(atEnd.size).toBe(10);
    expect((await buffer(atEnd.body)).length).toBe(0);
    await expect(store.get(KEY, { start: 11 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.get(KEY, { start: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.get('tenants/t1/backups/none', { start: 1 })).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(store.get('tenants/t1/backups/none')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await store.stat('tenants/t1/backups/none')).toBeUndefined();

    await store.put('tenants/t1/backups/empty', chunks(), { retainUntil: in30Days });
    const empty = await store.get('tenants/t1/backups/empty');
    expect([empty.size, (await buffer(empty.body)).length]).toEqual([0, 0]);
  });

  it('lists every object under a prefix across several pages, with its lock, and nothing of other prefixes', async () => {
    const store = storeWith({ listPageSize: 2 });
    const dates = [1, 2, 3, 4, 5].map((d) => new Date(start.getTime() + d * DAY));
    for (const [i, date] of dates.entries()) await store.put(`tenants/a/backups/${i}`, chunks('x'.repeat(i)), { retainUntil: date });
    await store.put('tenants/ab/backups/0', chunks('y'), { retainUntil: in30Days });
    await store.putMutable('keys/a', Buffer.from('wrapped'));
    requests = [];

    expect((await listed(store, 'tenants/a')).map((o) => [o.key, o.size, o.retainUntil])).toEqual(dates.map((date, i) => [`tenants/a/backups/${i}`, i, date]));
    expect(sent('ListObjectsV2Command')).toHaveLength(3);
    expect((await listed(store, '')).map((o) => [o.key, o.retainUntil])).toEqual([
      ['keys/a', null],
      ...dates.map((date, i) => [`tenants/a/backups/${i}`, date]),
      ['tenants/ab/backups/0', in30Days],
    ]);
    expect(await listed(store, 'tenants/c')).toEqual([]);
    // Another location sharing the bucket sees none of it.
    expect(await listed(createS3Store({ name: 'fr', bucket: BUCKET, prefix: `${prefix}-other`, client, clock }), '')).toEqual([]);
  });

  it('keeps unlocked key escrow objects under keys/ only', async () => {
    const store = storeWith();
    expect(await store.getMutable('keys/tenant-1')).toBeUndefined();
    await store.putMutable('keys/tenant-1', Buffer.from('wrapped-1'));
    await store.putMutable('keys/tenant-1', Buffer.from('wrapped-2'));
    expect((await store.getMutable('keys/tenant-1'))?.toString()).toBe('wrapped-2');
    expect(await store.stat('keys/tenant-1')).toMatchObject({ size: 9, retainUntil: null });
    expect(sent('PutObjectCommand').every((r) => !('x-amz-object-lock-mode' in r.headers))).toBe(true);
    expect(await store.deleteMutable('keys/tenant-1')).toBe(true);
    expect(await store.deleteMutable('keys/tenant-1')).toBe(false);
    expect(await store.getMutable('keys/tenant-1')).toBeUndefined();

    await store.put(KEY, chunks('locked'), { retainUntil: in30Days });
    await expect(store.putMutable(KEY, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.deleteMutable(KEY)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.getMutable(KEY)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.delete('keys/tenant-1')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    expect(await text((await store.get(KEY)).body)).toBe('locked');
  });

  it('refuses invalid keys and prefixes, and half-given credentials', async () => {
    const store = storeWith();
    for (const key of ['../x', '/etc/passwd', 'a//b', '', 'a/b.partial']) {
      await expect(store.put(key, chunks('x'), { retainUntil: in30Days })).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(store.get(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    }
    await expect(store.put('tenants/x', chunks('x'), { retainUntil: new Date('nonsense') })).rejects.toBeInstanceOf(TypeError);
    expect(() => createS3Store({ name: 'de', bucket: BUCKET, prefix: '../up', client, clock })).toThrow(InvalidStorageKeyError);
    expect(() => s3ClientFrom({ region: 'eu-west-3', accessKeyId: 'only-the-id' })).toThrow(/both accessKeyId and secretAccessKey/);
    expect(requests).toEqual([]);
  });

  it('s3rver findings: it ignores the lock and If-None-Match and has no retention or versioning API (see the file comment)', async () => {
    const Key = `${prefix}/raw`;
    const until = in30Days;
    const errorOf = (p: Promise<unknown>) => p.then(() => 'ok', (err: Error) => err.name);
    expect(await errorOf(client.send(new GetObjectLockConfigurationCommand({ Bucket: BUCKET })))).toBe('NotImplemented');
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'one', IfNoneMatch: '*', ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: until }));
    expect(await errorOf(client.send(new PutObjectCommand({ Bucket: BUCKET, Key, Body: 'two', IfNoneMatch: '*' })))).toBe('ok');
    expect(await (await client.send(new GetObjectCommand({ Bucket: BUCKET, Key }))).Body?.transformToString()).toBe('two');
    expect(await errorOf(client.send(new GetObjectRetentionCommand({ Bucket: BUCKET, Key })))).toBe('NotImplemented');
    expect(await errorOf(client.send(new PutObjectRetentionCommand({ Bucket: BUCKET, Key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until } })))).toBe('MethodNotAllowed');
    expect(await errorOf(client.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: Key })))).toBe('MethodNotAllowed');
    expect(await errorOf(client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key })))).toBe('ok');
    expect(await errorOf(client.send(new HeadObjectCommand({ Bucket: BUCKET, Key })))).toBe('NotFound');
  });
});
