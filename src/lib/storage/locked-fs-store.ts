/**
 * The filesystem driver of BackupStore (backup-store.ts): the embedded default, one directory per
 * backup location ("country").
 *
 * A filesystem has no Object Lock, so **this driver is the lock** (BKP-6): every code path of
 * Havre goes through it, and it refuses to overwrite an object (write once) or to delete it before
 * its retain-until date. Files are also made read-only (0o444), which stops accidental writes by
 * other non-root processes — but Havre's servers and CI run as root, and root ignores file modes,
 * so the modes are a courtesy and the driver's refusals are the real enforcement. (Protection
 * against someone with a shell on the machine is the job of a second location on S3 with Object
 * Lock, s3-store.ts.)
 *
 * Layout under `root`:
 * - `<key>`: the object's bytes, written by the atomic write-once put of fs-storage.ts (temporary
 *   `.partial` file, fsync, link(2) — which fails when the key exists —, fsync of the directories).
 * - `.locks/<key>/.retain-until-<ISO date>`: the lock, one empty read-only file per retain-until
 *   date ever given to the object; the lock is the latest. Keys' segments start with a letter or a
 *   digit (`assertKey`), so nothing under `.locks/` can ever be a key, and the names inside start
 *   with a dot, so they cannot be mistaken for a key's subdirectory either. Creating a name is
 *   atomic, and adding a date never removes one: concurrent puts and extensions, even from several
 *   processes, can only move the lock later — no read-modify-write race can shorten it.
 * - `keys/…`: key escrow objects (MUTABLE_PREFIX), replaced atomically (temp file + rename), unlocked.
 *
 * The lock is written **before** the object's bytes become visible: a crash in between leaves a
 * lock without an object (harmless: it only makes a later put of the same key keep the later of the
 * two dates), never a visible object without its lock. A crash during a put leaves a `.partial`
 * file, which is never listed nor read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Clock } from '../clock.ts';
import { assertLockedKey, assertMutableKey, assertRetainUntil, assertStart, isMutableKey, ObjectLockedError, type BackupStore, type LockedObject } from './backup-store.ts';
import { createFsStorage, syncDirectory } from './fs-storage.ts';
import { assertKey, INCOMPLETE_SUFFIX, StorageKeyExistsError, StorageNotFoundError } from './storage.ts';

/** The tree of lock sidecars; its name starts with a dot, which no key segment can. */
const LOCKS_DIRECTORY = '.locks';
/** The name of a lock file, followed by the ISO retain-until date (readable by an operator with `ls`). */
const RETAIN_UNTIL_PREFIX = '.retain-until-';

/** One buffer for a whole read-back (`digest`): 1 MiB reads, no garbage per chunk. */
const READ_BACK_BUFFER_BYTES = 1024 * 1024;

const errorCode = (err: unknown) => (err as { code?: string }).code;
const isAbsent = (err: unknown) => ['ENOENT', 'ENOTDIR'].includes(errorCode(err) ?? '');

/** True when `key` is a valid key (so never a sidecar, a `.partial` file or a check probe). */
function isKey(key: string): boolean {
  try {
    assertKey(key);
    return true;
  } catch {
    return false;
  }
}

export interface LockedFsStoreOptions {
  /** The location's name, e.g. "fr". */
  name: string;
  /** The directory of this location (created by `check` or the first put). */
  root: string;
  /** Decides when a lock has passed (a parameter, so that tests and `--as-of` runs can move time). */
  clock: Clock;
}

/**
 * A BackupStore over the directory `root`, enforcing write-once and retain-until itself (BKP-6):
 * no file mode is relied upon, since the process may run as root (see the file comment).
 */
export function createLockedFsStore({ name, root, clock }: LockedFsStoreOptions): BackupStore {
  const base = path.resolve(root);
  const objects = createFsStorage(base);

  function fileOf(key: string): string {
    assertKey(key);
    return path.join(base, key);
  }
  const lockDirectoryOf = (key: string) => path.join(base, LOCKS_DIRECTORY, key);

  /** mkdir -p, then fsyncs the parents of every directory it created, so that they survive a power cut. */
  async function makeDirectory(dir: string): Promise<void> {
    const firstCreated = await fs.mkdir(dir, { recursive: true });
    if (!firstCreated) return;
    for (let d = dir; ; d = path.dirname(d)) {
      await syncDirectory(path.dirname(d));
      if (d === firstCreated || d === base) break;
    }
  }

  /** The latest retain-until date recorded for `key`, or null when none is. */
  async function retainUntilOf(key: string): Promise<Date | null> {
    let names: string[];
    try {
      names = await fs.readdir(lockDirectoryOf(key));
    } catch (err) {
      if (isAbsent(err)) return null;
      throw err;
    }
    let latest: Date | null = null;
    for (const entry of names) {
      if (!entry.startsWith(RETAIN_UNTIL_PREFIX)) continue;
      const date = new Date(entry.slice(RETAIN_UNTIL_PREFIX.length));
      if (!Number.isNaN(date.getTime()) && (latest === null || date > latest)) latest = date;
    }
    return latest;
  }

  /** Opens the object stored under `key` for reading (never through a symlink); StorageNotFoundError when absent. */
  async function openObject(key: string): Promise<{ handle: fs.FileHandle; size: number }> {
    const file = fileOf(key);
    let handle;
    try {
      handle = await fs.open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      if (isAbsent(err) || errorCode(err) === 'ELOOP') throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
      throw err;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
      return { handle, size: st.size };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Records a retain-until date for `key`: one new read-only file, created atomically and made durable. */
  async function addLock(key: string, retainUntil: Date): Promise<void> {
    const dir = lockDirectoryOf(key);
    await makeDirectory(dir);
    const file = path.join(dir, RETAIN_UNTIL_PREFIX + retainUntil.toISOString());
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o444);
      await handle.close();
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err; // the same date is already recorded
    }
    await syncDirectory(dir);
  }

  /** Removes the lock files of a deleted object (never a subdirectory: those belong to other keys). */
  async function removeLocks(key: string): Promise<void> {
    const dir = lockDirectoryOf(key);
    const names = await fs.readdir(dir).catch((err: unknown) => {
      if (isAbsent(err)) return [];
      throw err;
    });
    for (const entry of names) if (entry.startsWith(RETAIN_UNTIL_PREFIX)) await fs.rm(path.join(dir, entry), { force: true });
    await fs.rmdir(dir).catch(() => {}); // not empty (another key's locks below) or already gone: keep it
  }

  return {
    name,
    driver: 'fs',

    async check() {
      try {
        await fs.mkdir(base, { recursive: true });
        const st = await fs.stat(base);
        if (!st.isDirectory()) throw new Error('it is not a directory');
        // A real write, not access(W_OK): the answer must hold for what put does (and root passes access checks).
        const probe = path.join(base, `.check-${randomBytes(8).toString('hex')}`);
        await fs.writeFile(probe, '', { flag: 'wx' });
        await fs.rm(probe, { force: true });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new Error(`Backup location "${name}": ${base} must be a writable directory (${reason}). Set the location's root to a directory Havre can write to.`, { cause: err });
      }
    },

    async put(key, source, { retainUntil }) {
      assertLockedKey(key);
      assertRetainUntil(retainUntil);
      // Refusing early keeps a second put from adding a (later) date to an existing object's lock.
      if (await objects.stat(key)) throw new StorageKeyExistsError(`An object is already stored under ${key}.`);
      await addLock(key, retainUntil);
      const { size } = await objects.put(key, source); // link(2): refuses the key if a concurrent put won
      await fs.chmod(fileOf(key), 0o444);
      return { size };
    },

    async get(key, options) {
      const { handle, size } = await openObject(key);
      try {
        const start = options?.start ?? 0;
        assertStart(key, start, size);
        if (start === size) {
          await handle.close();
          return { body: Readable.from([]), size };
        }
        return { body: handle.createReadStream({ start }), size };
      } catch (err) {
        await handle.close();
        throw err;
      }
    },

    async digest(key) {
      const { handle } = await openObject(key);
      try {
        const hash = createHash('sha256');
        const buffer = Buffer.allocUnsafe(READ_BACK_BUFFER_BYTES);
        let size = 0;
        for (;;) {
          const { bytesRead } = await handle.read(buffer, 0, buffer.length, size);
          if (bytesRead === 0) break;
          hash.update(buffer.subarray(0, bytesRead));
          size += bytesRead;
        }
        return { size, sha256: hash.digest('hex') };
      } finally {
        await handle.close();
      }
    },

    async stat(key) {
      const object = await objects.stat(key);
      if (!object) return undefined;
      return { ...object, retainUntil: isMutableKey(key) ? null : await retainUntilOf(key) };
    },

    async extendRetention(key, retainUntil) {
      assertLockedKey(key);
      assertRetainUntil(retainUntil);
      if (!(await objects.stat(key))) throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
      const current = await retainUntilOf(key);
      if (current && retainUntil <= current) return; // never shortened
      await addLock(key, retainUntil);
    },

    async delete(key) {
      assertLockedKey(key);
      if (!(await objects.stat(key))) return false;
      const retainUntil = await retainUntilOf(key);
      if (retainUntil && clock.now() < retainUntil) throw new ObjectLockedError(key, retainUntil);
      // The object first: a crash in between leaves a lock without an object, never the reverse.
      const deleted = await objects.delete(key);
      await removeLocks(key);
      return deleted;
    },

    async *list(prefix) {
      for await (const object of objects.list(prefix)) {
        if (!isKey(object.key)) continue; // the .locks tree, check probes
        const locked: LockedObject = { ...object, retainUntil: isMutableKey(object.key) ? null : await retainUntilOf(object.key) };
        yield locked;
      }
    },

    async putMutable(key, body) {
      assertMutableKey(key);
      const file = fileOf(key);
      const dir = path.dirname(file);
      await makeDirectory(dir);
      // The `.partial` suffix keeps the temporary file out of listings, like fs-storage's puts.
      const temp = `${file}.${randomBytes(8).toString('hex')}${INCOMPLETE_SUFFIX}`;
      try {
        const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          await handle.writeFile(body);
          await handle.sync();
        } finally {
          await handle.close();
        }
        await fs.rename(temp, file); // atomic replace: a reader sees the old or the new bytes, never a mix
      } catch (err) {
        await fs.rm(temp, { force: true });
        throw err;
      }
      await syncDirectory(dir);
    },

    async getMutable(key) {
      assertMutableKey(key);
      let handle;
      try {
        handle = await fs.open(fileOf(key), constants.O_RDONLY | constants.O_NOFOLLOW);
      } catch (err) {
        if (isAbsent(err) || errorCode(err) === 'ELOOP') return undefined;
        throw err;
      }
      try {
        return (await handle.stat()).isFile() ? await handle.readFile() : undefined;
      } finally {
        await handle.close();
      }
    },

    async deleteMutable(key) {
      assertMutableKey(key);
      const file = fileOf(key);
      try {
        await fs.unlink(file);
      } catch (err) {
        if (isAbsent(err)) return false;
        throw err;
      }
      // Crypto-shredding (BKP-7) must survive a power cut: the removal of the name is made durable.
      await syncDirectory(path.dirname(file));
      return true;
    },
  };
}
