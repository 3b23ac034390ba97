/**
 * Where Havre keeps files (attachments today; backups later): objects under keys, behind one small
 * interface so that the filesystem driver (embedded default, fs-storage.ts) and object-storage
 * drivers are interchangeable.
 *
 * The promises every driver keeps:
 * - **Atomic put**: an object becomes visible under its key only once all its bytes are durably
 *   stored. A crash or a failed source at any point leaves either nothing under the key or the whole
 *   object — never a partial file that looks complete. Leftovers of interrupted puts are invisible
 *   (not listed, not readable) and removed by `deleteIncomplete`.
 * - **Write once**: `put` never replaces an existing object (StorageKeyExistsError); keys are never
 *   reused (attachments use fresh UUIDs).
 * - **Keys are relative paths** of simple segments (`tenants/<id>/attachments/<id>`), checked by
 *   `assertKey`: no `..`, no absolute path, no NUL, no backslash — a key can never leave the root.
 */
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  size: number;
  /** When the object was stored (its last write). */
  modifiedAt: Date;
}

export interface Storage {
  /**
   * Stores the bytes of `source` under `key` (see "atomic put" above). If `source` throws, nothing
   * is stored and its error is rethrown. Resolves once the object is durable.
   */
  put(key: string, source: AsyncIterable<Uint8Array>): Promise<{ size: number }>;
  /** Opens an object for reading: its bytes and size. StorageNotFoundError when absent. */
  get(key: string): Promise<{ body: Readable; size: number }>;
  /** The object's size and date, or undefined when absent. */
  stat(key: string): Promise<StoredObject | undefined>;
  /** Removes an object; true when it existed. Idempotent. */
  delete(key: string): Promise<boolean>;
  /** Every complete object whose key starts with the path `prefix` (a whole number of segments). */
  list(prefix: string): AsyncIterable<StoredObject>;
  /** Removes the leftovers of interrupted puts under `prefix` last written before `olderThan`; returns how many. */
  deleteIncomplete(prefix: string, olderThan: Date): Promise<number>;
}

export class InvalidStorageKeyError extends Error {
  override name = 'InvalidStorageKeyError';
}

export class StorageNotFoundError extends Error {
  override name = 'StorageNotFoundError';
}

export class StorageKeyExistsError extends Error {
  override name = 'StorageKeyExistsError';
}

/** One path segment: starts with a letter or digit (so never `.` or `..`), then letters, digits, `.`, `_`, `-`. */
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** The suffix the filesystem driver gives to files being written; no key may end with it. */
export const INCOMPLETE_SUFFIX = '.partial';

/**
 * Throws InvalidStorageKeyError unless `key` is a relative path of simple segments: no `..`, no
 * leading `/`, no empty segment, no NUL, backslash or other special character, at most 1,024
 * characters, and no segment ending with the driver's in-progress suffix.
 */
export function assertKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new InvalidStorageKeyError('A storage key is 1 to 1,024 characters.');
  for (const segment of key.split('/')) {
    if (!SEGMENT.test(segment) || segment.endsWith(INCOMPLETE_SUFFIX)) {
      throw new InvalidStorageKeyError(`Invalid storage key segment ${JSON.stringify(segment.slice(0, 50))}: letters, digits, '.', '_' and '-' only, starting with a letter or digit.`);
    }
  }
}
