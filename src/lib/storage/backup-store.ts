/**
 * A backup location (BKP-3, BKP-6): write-once object storage with a retain-until date per object.
 * Two drivers implement it: the filesystem (`locked-fs-store.ts`, the embedded default: one
 * directory per "country") and S3-compatible object storage with Object Lock in compliance mode
 * (`s3-store.ts`).
 *
 * The promises every driver keeps:
 * - **Atomic put**: an object becomes visible under its key only once all its bytes are stored; a
 *   crash leaves nothing visible under the key (a `.partial` file, an unfinished multipart upload).
 * - **Write once, locked**: `put` never replaces an object (StorageKeyExistsError); until its
 *   retain-until date, an object cannot be modified or deleted by any code path of Havre
 *   (`delete` throws ObjectLockedError). The lock can be extended, never shortened.
 * - **Keys** follow `assertKey` (storage.ts): relative paths of simple segments.
 * - **Key escrow objects** (`putMutable`/`deleteMutable`, under `keys/`) are the one exception:
 *   small unlocked objects holding each tenant's *wrapped* backup key, so that crypto-shredding
 *   (BKP-7) can delete them while the locked backups cannot be deleted yet.
 */
import type { Readable } from 'node:stream';
import { assertKey, InvalidStorageKeyError } from './storage.ts';

export interface LockedObject {
  key: string;
  size: number;
  modifiedAt: Date;
  /** The object cannot be deleted or changed before this date (null: no lock, e.g. key escrow). */
  retainUntil: Date | null;
}

export interface BackupStore {
  /** The location's name, e.g. "fr" or "de" (shown to customers, recorded per copy). */
  readonly name: string;
  /** The driver, for display: "fs" or "s3". */
  readonly driver: 'fs' | 's3';
  /**
   * Checks at start that the location is usable and really write-once (S3: the bucket has Object
   * Lock enabled; fs: the directory is writable). Throws an Error whose message says what to fix.
   */
  check(): Promise<void>;
  /** Stores `source` under `key`, locked until `retainUntil`. Resolves with the byte count once durable. */
  put(key: string, source: AsyncIterable<Uint8Array>, options: { retainUntil: Date }): Promise<{ size: number }>;
  /**
   * Opens an object for reading from byte `start` (default 0; 0 ≤ start ≤ size, else RangeError), so
   * that an interrupted download can resume. `size` is the whole object's size (the body holds
   * `size - start` bytes). StorageNotFoundError when absent.
   */
  get(key: string, options?: { start?: number }): Promise<{ body: Readable; size: number }>;
  /**
   * Reads every byte of the object back and returns its size and SHA-256 (hex): the read-back that
   * makes a backup complete (BKP-3). A driver reads the cheapest faithful way — the filesystem into
   * one reused buffer (no garbage per chunk), S3 with a full GET. StorageNotFoundError when absent.
   */
  digest(key: string): Promise<{ size: number; sha256: string }>;
  /** The object's size, date and lock, or undefined when absent. */
  stat(key: string): Promise<LockedObject | undefined>;
  /** Moves the lock of `key` to `retainUntil` when that is later than its current lock; never shortens it. */
  extendRetention(key: string, retainUntil: Date): Promise<void>;
  /** Deletes an object whose lock has passed; ObjectLockedError before; false when absent. */
  delete(key: string): Promise<boolean>;
  /** Every complete object under the path `prefix`. */
  list(prefix: string): AsyncIterable<LockedObject>;
  /** Writes or replaces a small unlocked object (key escrow only: keys under `keys/`). */
  putMutable(key: string, body: Buffer): Promise<void>;
  /** Reads a small unlocked object, or undefined when absent. */
  getMutable(key: string): Promise<Buffer | undefined>;
  /** Deletes a small unlocked object; false when absent. */
  deleteMutable(key: string): Promise<boolean>;
}

/** Deleting or overwriting an object before its retain-until date. */
export class ObjectLockedError extends Error {
  override name = 'ObjectLockedError';
  readonly retainUntil: Date;
  constructor(key: string, retainUntil: Date) {
    super(`${key} is locked until ${retainUntil.toISOString()}`);
    this.retainUntil = retainUntil;
  }
}

/** Key escrow objects live here, and only here (the drivers refuse mutable writes elsewhere). */
export const MUTABLE_PREFIX = 'keys/';

// Checks shared by the drivers, so that both refuse exactly the same requests.

/** True for a key escrow key (under `keys/`). */
export const isMutableKey = (key: string): boolean => key.startsWith(MUTABLE_PREFIX);

/** Throws unless `key` is a valid key outside `keys/`: locked objects never live among the key escrow. */
export function assertLockedKey(key: string): void {
  assertKey(key);
  if (isMutableKey(key)) throw new InvalidStorageKeyError(`${key}: ${MUTABLE_PREFIX} holds unlocked key escrow objects only (putMutable); backups are stored elsewhere.`);
}

/** Throws unless `key` is a valid key under `keys/`, the only place where objects may be replaced or deleted at will. */
export function assertMutableKey(key: string): void {
  assertKey(key);
  if (!isMutableKey(key)) throw new InvalidStorageKeyError(`${key}: unlocked (mutable) objects are allowed under ${MUTABLE_PREFIX} only.`);
}

/** Throws unless `retainUntil` is a valid date (an Invalid Date would silently mean "no lock"). */
export function assertRetainUntil(retainUntil: Date): void {
  if (!(retainUntil instanceof Date) || Number.isNaN(retainUntil.getTime())) throw new TypeError('retainUntil must be a valid date.');
}

/** Checks a `get` offset against the object's size: 0 ≤ start ≤ size (start = size reads nothing). */
export function assertStart(key: string, start: number, size: number): void {
  if (!Number.isSafeInteger(start) || start < 0 || start > size) throw new RangeError(`Cannot read ${key} from byte ${start}: it has ${size} bytes.`);
}
