/**
 * The filesystem driver of Storage (storage.ts): one directory tree under `root`, a key being the
 * relative path of a file.
 *
 * A put writes `<key>.<random>.partial` in the key's own directory, fsyncs it, then hard-links it
 * to the key and removes the temporary name: link(2) is atomic and fails when the key exists (write
 * once, without a check-then-act race), and a file under the key is always complete. The
 * directories touched are fsynced before put resolves, so a stored object survives a power cut.
 * A kill at any point leaves at most a `.partial` file, which no read or listing ever shows and
 * `deleteIncomplete` removes once it is old.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { assertKey, INCOMPLETE_SUFFIX, InvalidStorageKeyError, StorageKeyExistsError, StorageNotFoundError, type Storage, type StoredObject } from './storage.ts';

/** A put of more than this starts flushing to disk as it goes (see `put`). */
const SYNC_EVERY_BYTES = 16 * 1024 * 1024;

const errorCode = (err: unknown) => (err as { code?: string }).code;

/** fsyncs a directory, so that the names created or removed in it survive a power cut. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface Entry {
  file: string;
  key: string;
  incomplete: boolean;
}

/** Every regular file under `dir` (depth first); nothing when `dir` does not exist. Symlinks are skipped. */
async function* walk(dir: string, keyPrefix: string): AsyncGenerator<Entry> {
  let handle;
  try {
    handle = await fs.opendir(dir);
  } catch (err) {
    if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return;
    throw err;
  }
  for await (const entry of handle) {
    const file = path.join(dir, entry.name);
    const key = keyPrefix ? `${keyPrefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) yield* walk(file, key);
    else if (entry.isFile()) yield { file, key, incomplete: entry.name.endsWith(INCOMPLETE_SUFFIX) };
  }
}

/** A Storage over the directory `root` (created on first write). */
export function createFsStorage(root: string): Storage {
  const base = path.resolve(root);

  /** The file of a key; refuses any key that is not a plain relative path (storage.ts `assertKey`). */
  function fileOf(key: string): string {
    assertKey(key);
    const file = path.resolve(base, key);
    // Defence in depth: assertKey already makes this impossible.
    if (!file.startsWith(base + path.sep)) throw new InvalidStorageKeyError('A storage key cannot leave the storage root.');
    return file;
  }

  /** The directory of a listing prefix ('' = the whole root). */
  function directoryOf(prefix: string): string {
    const trimmed = prefix.replace(/\/+$/, '');
    return trimmed === '' ? base : fileOf(trimmed);
  }

  async function statOf(file: string, key: string): Promise<StoredObject | undefined> {
    try {
      const st = await fs.stat(file);
      return st.isFile() ? { key, size: st.size, modifiedAt: st.mtime } : undefined;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
  }

  return {
    async put(key, source) {
      const file = fileOf(key);
      const dir = path.dirname(file);
      const firstCreated = await fs.mkdir(dir, { recursive: true });
      const temp = `${file}.${randomBytes(8).toString('hex')}${INCOMPLETE_SUFFIX}`;
      const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o640);
      let size = 0;
      // Write-behind: every SYNC_EVERY_BYTES, an fdatasync starts while the writes go on (one at a
      // time), so that the disk works during the put and the closing fsync finds little left.
      let syncing: Promise<void> | null = null;
      let syncFailure: unknown = null;
      let syncedUpTo = 0;
      try {
        for await (const chunk of source) {
          let offset = 0;
          while (offset < chunk.byteLength) offset += (await handle.write(chunk, offset)).bytesWritten;
          size += chunk.byteLength;
          if (syncFailure) throw syncFailure;
          if (!syncing && size - syncedUpTo >= SYNC_EVERY_BYTES) {
            syncedUpTo = size;
            syncing = handle.datasync().then(
              () => {
                syncing = null;
              },
              (err: unknown) => {
                syncFailure = err;
                syncing = null;
              },
            );
          }
        }
        await syncing;
        if (syncFailure) throw syncFailure;
        await handle.sync();
      } catch (err) {
        // The write-behind sync must be over before the handle closes.
        await syncing;
        await handle.close().catch(() => {});
        await fs.rm(temp, { force: true });
        throw err;
      }
      await handle.close();
      try {
        await fs.link(temp, file);
      } catch (err) {
        await fs.rm(temp, { force: true });
        if (errorCode(err) === 'EEXIST') throw new StorageKeyExistsError(`An object is already stored under ${key}.`);
        throw err;
      }
      await fs.rm(temp, { force: true });
      // The new name, and every directory mkdir created, must be on disk before the caller relies on them.
      await syncDirectory(dir);
      if (firstCreated) {
        for (let d = dir; ; d = path.dirname(d)) {
          await syncDirectory(path.dirname(d));
          if (d === firstCreated || d === base) break;
        }
      }
      return { size };
    },

    async get(key) {
      const file = fileOf(key);
      let handle;
      try {
        handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (err) {
        if (['ENOENT', 'ENOTDIR', 'ELOOP'].includes(errorCode(err) ?? '')) throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
        throw err;
      }
      const st = await handle.stat();
      if (!st.isFile()) {
        await handle.close();
        throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
      }
      return { body: handle.createReadStream(), size: st.size };
    },

    stat: (key) => statOf(fileOf(key), key),

    async delete(key) {
      try {
        await fs.unlink(fileOf(key));
        return true;
      } catch (err) {
        if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false;
        throw err;
      }
    },

    async *list(prefix) {
      const dir = directoryOf(prefix);
      const keyPrefix = path.relative(base, dir).split(path.sep).join('/');
      for await (const entry of walk(dir, keyPrefix)) {
        if (entry.incomplete) continue;
        const object = await statOf(entry.file, entry.key);
        if (object) yield object;
      }
    },

    async deleteIncomplete(prefix, olderThan) {
      const dir = directoryOf(prefix);
      let removed = 0;
      for await (const entry of walk(dir, '')) {
        if (!entry.incomplete) continue;
        const st = await fs.stat(entry.file).catch(() => undefined);
        if (st && st.mtime < olderThan) {
          await fs.rm(entry.file, { force: true });
          removed++;
        }
      }
      return removed;
    },
  };
}
