import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../clock.ts';
import { ObjectLockedError, type BackupStore, type LockedObject } from './backup-store.ts';
import { createLockedFsStore } from './locked-fs-store.ts';
import { InvalidStorageKeyError, StorageKeyExistsError, StorageNotFoundError } from './storage.ts';

const DAY = 86_400_000;
const start = new Date('2026-03-01T10:00:00.000Z');
const in30Days = new Date(start.getTime() + 30 * DAY);

let dir: string;
let root: string;
let clock: ReturnType<typeof fixedClock>;
let store: BackupStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'havre-locked-fs-'));
  root = path.join(dir, 'fr');
  clock = fixedClock(start);
  store = createLockedFsStore({ name: 'fr', root, clock });
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

async function listed(prefix: string): Promise<LockedObject[]> {
  const out: LockedObject[] = [];
  for await (const object of store.list(prefix)) out.push(object);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Every file on disk under the location's root, relative, with its permission bits. */
async function filesOnDisk(): Promise<Array<[string, number]>> {
  const entries = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const out: Array<[string, number]> = [];
  for (const e of entries) {
    const file = path.join(e.parentPath, e.name);
    out.push([path.relative(root, file), (await stat(file)).mode & 0o777]);
  }
  return out.sort((a, b) => a[0].localeCompare(b[0]));
}

const KEY = 'tenants/t1/backups/2026-03-01.dump';

describe('locked filesystem backup store', () => {
  it('[BKP-6] a stored backup object cannot be overwritten or deleted before its retain-until date, even as root', async () => {
    expect(await store.put(KEY, chunks('first ', 'copy'), { retainUntil: in30Days })).toEqual({ size: 10 });
    // Write once: a second put is refused, and neither the bytes nor the lock change.
    await expect(store.put(KEY, chunks('second'), { retainUntil: new Date(in30Days.getTime() + 365 * DAY) })).rejects.toBeInstanceOf(StorageKeyExistsError);
    // The object and its lock sidecar are read-only on disk…
    expect(await filesOnDisk()).toEqual([
      [`.locks/${KEY}/.retain-until-${in30Days.toISOString()}`, 0o444],
      [KEY, 0o444],
    ]);
    // …but root ignores file modes: make them writable again, as they effectively are for root.
    // The refusals below come from the driver itself, not from the permissions.
    for (const [file] of await filesOnDisk()) await chmod(path.join(root, file), 0o666);
    await expect(store.put(KEY, chunks('third'), { retainUntil: in30Days })).rejects.toBeInstanceOf(StorageKeyExistsError);
    const refusal = await store.delete(KEY).catch((err: unknown) => err);
    expect(refusal).toBeInstanceOf(ObjectLockedError);
    expect((refusal as ObjectLockedError).retainUntil).toEqual(in30Days);
    clock.set(new Date(in30Days.getTime() - 1));
    await expect(store.delete(KEY)).rejects.toBeInstanceOf(ObjectLockedError);
    expect(await text((await store.get(KEY)).body)).toBe('first copy');
    expect(await store.stat(KEY)).toMatchObject({ key: KEY, size: 10, retainUntil: in30Days });

    // Once the date has passed, the object and its lock go.
    clock.set(in30Days);
    expect(await store.delete(KEY)).toBe(true);
    expect(await store.stat(KEY)).toBeUndefined();
    expect(await store.delete(KEY)).toBe(false);
    expect(await filesOnDisk()).toEqual([]);
  });

  it('[BKP-6] extends a lock, never shortens it', async () => {
    await store.put(KEY, chunks('x'), { retainUntil: in30Days });
    await store.extendRetention(KEY, new Date(start.getTime() + 10 * DAY)); // earlier: no-op
    await store.extendRetention(KEY, in30Days); // same: no-op
    expect((await store.stat(KEY))?.retainUntil).toEqual(in30Days);
    expect((await filesOnDisk()).filter(([f]) => f.startsWith('.locks/'))).toHaveLength(1);

    const in90Days = new Date(start.getTime() + 90 * DAY);
    await store.extendRetention(KEY, in90Days);
    expect((await store.stat(KEY))?.retainUntil).toEqual(in90Days);
    clock.set(new Date(in30Days.getTime() + DAY));
    await expect(store.delete(KEY)).rejects.toMatchObject({ name: 'ObjectLockedError', retainUntil: in90Days });
    // An extension to an earlier date after a later one still cannot shorten it.
    await store.extendRetention(KEY, new Date(start.getTime() + 60 * DAY));
    expect((await store.stat(KEY))?.retainUntil).toEqual(in90Days);
    clock.set(in90Days);
    expect(await store.delete(KEY)).toBe(true);

    await expect(store.extendRetention('tenants/t1/backups/none', in90Days)).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(store.extendRetention(KEY, new Date('nonsense'))).rejects.toBeInstanceOf(TypeError);
  });

  it('[BKP-6] leaves nothing visible when a put is killed mid-stream, and the key can be stored afterwards', async () => {
    // A real crash: a child process streams into the store and is SIGKILLed while the put is in progress.
    const moduleUrl = new URL('./locked-fs-store.ts', import.meta.url).href;
    const script = `
      import { createLockedFsStore } from ${JSON.stringify(moduleUrl)};
      const store = createLockedFsStore({ name: 'fr', root: process.argv[1], clock: { now: () => new Date() } });
      setInterval(() => {}, 1000);
      async function* stalled() { yield Buffer.alloc(65536, 1); process.send('streaming'); await new Promise(() => {}); }
      await store.put(${JSON.stringify(KEY)}, stalled(), { retainUntil: new Date(${in30Days.getTime()}) });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, root], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    const [message] = (await once(child, 'message')) as [string];
    expect(message).toBe('streaming');
    child.kill('SIGKILL');
    await once(child, 'exit');

    // The crash left a .partial file with the bytes written so far (so the kill really was mid-put)…
    const leftovers = (await filesOnDisk()).map(([f]) => f);
    expect(leftovers.some((f) => f.startsWith(`${KEY}.`) && f.endsWith('.partial'))).toBe(true);
    const partial = leftovers.find((f) => f.endsWith('.partial'))!;
    expect((await stat(path.join(root, partial))).size).toBe(65536);
    // …which nothing shows.
    expect(await listed('')).toEqual([]);
    expect(await store.stat(KEY)).toBeUndefined();
    await expect(store.get(KEY)).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await store.delete(KEY)).toBe(false);
    // The key is free: a new put stores it whole.
    await store.put(KEY, chunks('whole'), { retainUntil: in30Days });
    expect(await text((await store.get(KEY)).body)).toBe('whole');
    expect((await store.stat(KEY))?.retainUntil).toEqual(in30Days);
  });

  it('rethrows the error of a failing source and stores nothing', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('some bytes');
      throw new Error('dump failed');
    }
    await expect(store.put(KEY, failing(), { retainUntil: in30Days })).rejects.toThrow('dump failed');
    expect(await store.stat(KEY)).toBeUndefined();
    expect((await filesOnDisk()).filter(([f]) => !f.startsWith('.locks/'))).toEqual([]);
  });

  it('[BKP-3] digest reads a multi-MB object back whole (past the write-behind syncs of a big put): size and SHA-256 of its bytes', async () => {
    // 40 MiB of varied bytes in odd-sized chunks: the put flushes to disk as it goes (every 16 MiB).
    const piece = Buffer.alloc(1_000_003);
    for (let i = 0; i < piece.length; i++) piece[i] = (i * 31 + (i >> 8)) & 0xff;
    const hash = createHash('sha256');
    async function* big() {
      for (let i = 0; i < 40; i++) {
        const chunk = Buffer.from(piece.map((b) => b ^ i));
        hash.update(chunk);
        yield chunk;
      }
    }
    expect(await store.put(KEY, big(), { retainUntil: in30Days })).toEqual({ size: 40 * piece.length });
    const expected = hash.digest('hex');
    expect(await store.digest(KEY)).toEqual({ size: 40 * piece.length, sha256: expected });
    expect(createHash('sha256').update(await buffer((await store.get(KEY)).body)).digest('hex')).toBe(expected);
    await expect(store.digest('tenants/t1/backups/none')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('reads from a byte offset, for resumed downloads', async () => {
    await store.put(KEY, chunks('0123456789'), { retainUntil: in30Days });
    const from4 = await store.get(KEY, { start: 4 });
    expect(from4.size).toBe(10);
    expect(await text(from4.body)).toBe('456789');
    const atEnd = await store.get(KEY, { start: 10 });
    expect(atEnd.size).toBe(10);
    expect((await buffer(atEnd.body)).length).toBe(0);
    await expect(store.get(KEY, { start: 11 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.get(KEY, { start: -1 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.get(KEY, { start: 1.5 })).rejects.toBeInstanceOf(RangeError);
    await expect(store.get('tenants/t1/backups/none', { start: 1 })).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('lists complete objects with their locks, never sidecars, .partial files or other keys', async () => {
    await store.put('tenants/a/backups/one', chunks('1'), { retainUntil: in30Days });
    await store.put('tenants/a/backups/two', chunks('22'), { retainUntil: new Date(start.getTime() + DAY) });
    await store.put('tenants/ab/backups/three', chunks('333'), { retainUntil: in30Days });
    await store.putMutable('keys/a', Buffer.from('wrapped'));
    // Leftovers of an interrupted put, written by hand.
    await writeFile(path.join(root, 'tenants/a/backups/four.1234abcd.partial'), 'half');
    await writeFile(path.join(root, 'keys/b.1234abcd.partial'), 'half');

    expect((await listed('tenants/a')).map((o) => [o.key, o.size, o.retainUntil])).toEqual([
      ['tenants/a/backups/one', 1, in30Days],
      ['tenants/a/backups/two', 2, new Date(start.getTime() + DAY)],
    ]);
    expect((await listed('')).map((o) => [o.key, o.retainUntil])).toEqual([
      ['keys/a', null],
      ['tenants/a/backups/one', in30Days],
      ['tenants/a/backups/two', new Date(start.getTime() + DAY)],
      ['tenants/ab/backups/three', in30Days],
    ]);
    expect(await listed('tenants/c')).toEqual([]);
    // The sidecars really are on disk, just never shown.
    expect((await filesOnDisk()).filter(([f]) => f.startsWith('.locks/'))).toHaveLength(3);
    await expect(listed('.locks')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.get('.locks/tenants/a/backups/one')).rejects.toBeInstanceOf(InvalidStorageKeyError);
  });

  it('keeps unlocked key escrow objects under keys/ only, replaced atomically', async () => {
    expect(await store.getMutable('keys/tenant-1')).toBeUndefined();
    await store.putMutable('keys/tenant-1', Buffer.from('wrapped-1'));
    await store.putMutable('keys/tenant-1', Buffer.from('wrapped-2'));
    expect((await store.getMutable('keys/tenant-1'))?.toString()).toBe('wrapped-2');
    expect(await store.stat('keys/tenant-1')).toMatchObject({ size: 9, retainUntil: null });
    expect((await filesOnDisk()).map(([f]) => f)).toEqual(['keys/tenant-1']); // no temporary file left
    expect(await store.deleteMutable('keys/tenant-1')).toBe(true);
    expect(await store.deleteMutable('keys/tenant-1')).toBe(false);
    expect(await store.getMutable('keys/tenant-1')).toBeUndefined();

    // Elsewhere, nothing can be replaced or deleted at will…
    await store.put(KEY, chunks('locked'), { retainUntil: in30Days });
    await expect(store.putMutable(KEY, Buffer.from('x'))).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.deleteMutable(KEY)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.getMutable(KEY)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.putMutable('keysx/a', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidStorageKeyError);
    expect(await text((await store.get(KEY)).body)).toBe('locked');
    // …and no locked object goes among the key escrow.
    await expect(store.put('keys/tenant-2', chunks('x'), { retainUntil: in30Days })).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.extendRetention('keys/tenant-2', in30Days)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    await expect(store.delete('keys/tenant-2')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    expect(await store.getMutable('keys/tenant-2')).toBeUndefined();
  });

  it('refuses keys that could leave the root', async () => {
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a//b', '', '.locks/x', 'a/b.partial', 'a\\b']) {
      await expect(store.put(key, chunks('x'), { retainUntil: in30Days })).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(store.get(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(store.delete(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    }
    await expect(readdir(dir)).resolves.toEqual([]);
  });

  it('check() creates a missing root and refuses one that is not a writable directory', async () => {
    await store.check();
    expect((await stat(root)).isDirectory()).toBe(true);
    expect(await readdir(root)).toEqual([]); // the write probe is removed

    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const onFile = createLockedFsStore({ name: 'de', root: file, clock });
    await expect(onFile.check()).rejects.toThrow(/Backup location "de": .*a-file must be a writable directory/);
    const belowFile = createLockedFsStore({ name: 'de', root: path.join(file, 'sub'), clock });
    await expect(belowFile.check()).rejects.toThrow(/must be a writable directory/);
    expect(await readFile(file, 'utf8')).toBe('not a directory');
  });
});
