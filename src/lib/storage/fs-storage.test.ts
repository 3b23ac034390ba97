import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFsStorage } from './fs-storage.ts';
import { assertKey, InvalidStorageKeyError, StorageKeyExistsError, StorageNotFoundError, type Storage, type StoredObject } from './storage.ts';

let root: string;
let storage: Storage;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'havre-storage-'));
  storage = createFsStorage(path.join(root, 'store'));
});
afterEach(async () => rm(root, { recursive: true, force: true }));

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

async function listed(prefix: string): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const object of storage.list(prefix)) out.push(object);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** Every file on disk under the root, relative. */
async function filesOnDisk(): Promise<string[]> {
  return (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
    .sort();
}

describe('filesystem storage', () => {
  it('stores, stats, reads, lists and deletes objects by key', async () => {
    expect(await storage.put('tenants/a/attachments/one', chunks('hello ', 'world'))).toEqual({ size: 11 });
    await storage.put('tenants/a/attachments/two', chunks('x'));
    await storage.put('tenants/b/attachments/three', chunks(''));
    const { body, size } = await storage.get('tenants/a/attachments/one');
    expect(size).toBe(11);
    expect(await text(body)).toBe('hello world');
    expect(await storage.stat('tenants/a/attachments/one')).toMatchObject({ key: 'tenants/a/attachments/one', size: 11 });
    expect(await storage.stat('tenants/a/attachments/none')).toBeUndefined();
    expect((await listed('tenants/a/attachments')).map((o) => [o.key, o.size])).toEqual([
      ['tenants/a/attachments/one', 11],
      ['tenants/a/attachments/two', 1],
    ]);
    expect((await listed('')).length).toBe(3);
    expect(await listed('tenants/c')).toEqual([]);
    expect(await storage.delete('tenants/a/attachments/one')).toBe(true);
    expect(await storage.delete('tenants/a/attachments/one')).toBe(false);
    await expect(storage.get('tenants/a/attachments/one')).rejects.toBeInstanceOf(StorageNotFoundError);
    await expect(storage.get('tenants/a/attachments')).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('refuses keys that could leave the root: .., absolute paths, NUL, backslashes, empty segments', async () => {
    const bad = ['../x', 'a/../../x', '..', '.', 'a/./b', '/etc/passwd', 'a//b', 'a/', '', 'a\u0000b', 'a\\..\\b', 'C:\\x', '.hidden', 'a/b.partial', 'é', 'a b', 'x'.repeat(1025)];
    for (const key of bad) {
      expect(() => assertKey(key), JSON.stringify(key)).toThrow(InvalidStorageKeyError);
      await expect(storage.put(key, chunks('x')), JSON.stringify(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.get(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
      await expect(storage.delete(key)).rejects.toBeInstanceOf(InvalidStorageKeyError);
    }
    await expect(listed('../')).rejects.toBeInstanceOf(InvalidStorageKeyError);
    expect(() => assertKey('tenants/0b4c-9f/attachments/a.b_c-d')).not.toThrow();
    expect(await filesOnDisk()).toEqual([]);
  });

  it('never shows a partial object: a failing source leaves nothing, and an existing key is never replaced', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('half of it');
      throw new Error('client went away');
    }
    await expect(storage.put('k/one', failing())).rejects.toThrow('client went away');
    expect(await storage.stat('k/one')).toBeUndefined();
    expect(await filesOnDisk()).toEqual([]);

    await storage.put('k/one', chunks('first'));
    await expect(storage.put('k/one', chunks('second'))).rejects.toBeInstanceOf(StorageKeyExistsError);
    expect(await readFile(path.join(root, 'store/k/one'), 'utf8')).toBe('first');
    expect(await filesOnDisk()).toEqual(['store/k/one']);
  });

  it('leftovers of an interrupted put are invisible and removed once old', async () => {
    await storage.put('k/done', chunks('complete'));
    // What a kill -9 during a put leaves behind.
    const leftover = path.join(root, 'store/k/next.0123456789abcdef.partial');
    const fresh = path.join(root, 'store/k/other.fedcba9876543210.partial');
    await writeFile(leftover, 'half');
    await writeFile(fresh, 'half');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(leftover, hourAgo, hourAgo);
    expect((await listed('k')).map((o) => o.key)).toEqual(['k/done']);
    await expect(storage.get('k/next')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await storage.deleteIncomplete('k', new Date(Date.now() - 60_000))).toBe(1);
    expect(await filesOnDisk()).toEqual(['store/k/done', 'store/k/other.fedcba9876543210.partial']);
    expect((await stat(path.join(root, 'store/k/done'))).size).toBe(8);
  });
});
