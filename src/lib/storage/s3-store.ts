/**
 * The S3 driver of BackupStore (backup-store.ts): S3-compatible object storage with Object Lock in
 * compliance mode — the copy that not even an administrator of Havre's machines can delete early.
 *
 * Here the **store** is the lock (BKP-6): each object is written with `ObjectLockMode: COMPLIANCE`
 * and its retain-until date, which the store enforces against every client and credential until the
 * date. The driver adds client-side refusals (write once, delete before the date) so that Havre
 * behaves the same on every store and says why, but `check()` refuses to run on a bucket without
 * Object Lock: without it, those refusals would be the only protection.
 *
 * - **Put** streams through `@aws-sdk/lib-storage` `Upload` (multipart, memory bounded by
 *   partSize × queueSize): S3 makes a multipart object visible only on CompleteMultipartUpload, so
 *   a failure aborts the upload and a crash leaves an unfinished upload that no listing or read
 *   shows (a bucket lifecycle rule `AbortIncompleteMultipartUpload` reclaims its parts).
 * - **Write once**: `IfNoneMatch: '*'` on the PutObject / CompleteMultipartUpload makes the store
 *   refuse an existing key atomically (AWS since 2024, MinIO). Stores that ignore the header are
 *   covered by a HeadObject first; the race left between the two is harmless because an Object Lock
 *   bucket is versioned: a concurrent second write adds a version and cannot alter the locked one.
 * - **Lock date**: also kept as user metadata `havre-retain-until`, so that `stat` and the
 *   client-side `delete` refusal know the date on stores without the retention API. Metadata cannot
 *   change without rewriting the object, so after an extension the retention API is the authority;
 *   the driver always takes the later of the two.
 * - **Versions**: `delete` removes the exact version it checked (on a versioned bucket a delete
 *   without VersionId only adds a delete marker and keeps paying for the bytes), and `deleteMutable`
 *   removes every version of a key escrow object, or crypto-shredding (BKP-7) would be a pretence.
 */
import { hashStream } from '../crypto.ts';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  GetObjectRetentionCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  PutObjectRetentionCommand,
  S3Client,
  S3ServiceException,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Clock } from '../clock.ts';
import { assertLockedKey, assertMutableKey, assertRetainUntil, assertStart, isMutableKey, ObjectLockedError, type BackupStore, type LockedObject } from './backup-store.ts';
import { assertKey, StorageKeyExistsError, StorageNotFoundError } from './storage.ts';

/** The user metadata holding the retain-until date (ISO), read back by `stat` (`x-amz-meta-havre-retain-until`). */
export const RETAIN_UNTIL_METADATA = 'havre-retain-until';

export interface S3StoreOptions {
  /** The location's name, e.g. "de". */
  name: string;
  bucket: string;
  /** Where this location's objects live in the bucket, e.g. "havre/de" (several locations may share a bucket). */
  prefix?: string;
  client: S3Client;
  /** Decides when a lock has passed for the client-side refusal (the store keeps its own clock). */
  clock: Clock;
  /** Multipart part size in bytes (≥ 5 MiB; default 8 MiB). Memory per put ≈ partSize × queueSize. */
  partSize?: number;
  /** Parts uploaded in parallel (default 4). */
  queueSize?: number;
  /** Keys per ListObjectsV2 page (default 1,000, the S3 maximum). */
  listPageSize?: number;
}

export interface S3Settings {
  region: string;
  /** For S3-compatible stores (MinIO, Scaleway, OVH…); unset for AWS. */
  endpoint?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible stores need. */
  forcePathStyle?: boolean;
  /** Both or neither: without them, the SDK's default chain (environment, instance role…) is used. */
  accessKeyId?: string;
  secretAccessKey?: string;
}

/** An S3Client from Havre's settings, so that the composition root does not depend on the SDK's option names. */
export function s3ClientFrom(settings: S3Settings): S3Client {
  if (Boolean(settings.accessKeyId) !== Boolean(settings.secretAccessKey)) throw new Error('S3 settings: set both accessKeyId and secretAccessKey, or neither.');
  return new S3Client({
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle ?? false,
    credentials: settings.accessKeyId && settings.secretAccessKey ? { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey } : undefined,
  });
}

const errorName = (err: unknown) => (err instanceof Error ? err.name : '');
/** An absent object (GetObject says NoSuchKey; HeadObject, without a body, NotFound). */
const isNotFound = (err: unknown) => ['NoSuchKey', 'NotFound'].includes(errorName(err));
/** The store refused a write because the key exists (412), or because another conditional write to it is in progress (409). */
const isKeyTaken = (err: unknown) => ['PreconditionFailed', 'ConditionalRequestConflict'].includes(errorName(err)) || (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 412);

function parseDate(value: string | undefined): Date | null {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/**
 * S3 keeps retain-until dates to the second (the SDK sends them without milliseconds): rounding up
 * makes the store's lock never end before the date asked for.
 */
const ceilToSecond = (date: Date) => new Date(Math.ceil(date.getTime() / 1000) * 1000);

function latest(...dates: Array<Date | null | undefined>): Date | null {
  let out: Date | null = null;
  for (const date of dates) if (date && !Number.isNaN(date.getTime()) && (out === null || date > out)) out = date;
  return out;
}

/**
 * A BackupStore in `bucket` under `prefix`. Call `check()` at start: it refuses a bucket without
 * Object Lock (see the file comment).
 */
export function createS3Store({ name, bucket, prefix = '', client, clock, partSize = 8 * 1024 * 1024, queueSize = 4, listPageSize = 1000 }: S3StoreOptions): BackupStore {
  const trimmedPrefix = prefix.replace(/\/+$/, '');
  if (trimmedPrefix !== '') assertKey(trimmedPrefix);
  const base = trimmedPrefix === '' ? '' : `${trimmedPrefix}/`;
  const Bucket = bucket;
  const objectKey = (key: string) => base + key;

  /** The object's headers, or undefined when absent. */
  async function head(key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await client.send(new HeadObjectCommand({ Bucket, Key: objectKey(key) }));
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The lock date known from the headers: the store's (when the caller may read it) or Havre's metadata. */
  const lockFromHead = (key: string, h: HeadObjectCommandOutput) => (isMutableKey(key) ? null : latest(h.ObjectLockRetainUntilDate, parseDate(h.Metadata?.[RETAIN_UNTIL_METADATA])));

  /** The latest lock date known for an existing object: the retention API, its headers, Havre's metadata. */
  async function knownRetainUntil(key: string, h: HeadObjectCommandOutput): Promise<Date | null> {
    let fromApi: Date | undefined;
    try {
      const { Retention } = await client.send(new GetObjectRetentionCommand({ Bucket, Key: objectKey(key), VersionId: h.VersionId }));
      fromApi = Retention?.RetainUntilDate;
    } catch (err) {
      // Only the store's answer "I cannot tell" falls back to the metadata (no retention API, no
      // lock on this object); a network or credentials failure must not be mistaken for "no lock".
      if (!(err instanceof S3ServiceException) || isNotFound(err)) throw err;
    }
    return latest(fromApi, lockFromHead(key, h));
  }

  const store: BackupStore = {
    name,
    driver: 's3',

    async check() {
      const refusal = `Backup location "${name}": bucket ${bucket} has no Object Lock: Havre refuses to store backups there; create the bucket with Object Lock enabled`;
      let configuration;
      try {
        configuration = (await client.send(new GetObjectLockConfigurationCommand({ Bucket }))).ObjectLockConfiguration;
      } catch (err) {
        // Any failure — NotImplemented, no configuration, no such bucket, no access — means no proof of a lock.
        throw new Error(`${refusal} (GetObjectLockConfiguration failed: ${errorName(err) || 'error'}: ${err instanceof Error ? err.message : String(err)}).`, { cause: err });
      }
      if (configuration?.ObjectLockEnabled !== 'Enabled') throw new Error(`${refusal}.`);
      // A default retention would lock the key escrow objects too, and crypto-shredding (BKP-7) needs to delete them.
      if (configuration.Rule?.DefaultRetention) {
        throw new Error(`Backup location "${name}": bucket ${bucket} has a default retention rule, which would lock the key escrow objects (${base}keys/) that crypto-shredding must be able to delete; remove the default retention (Havre locks each backup object itself).`);
      }
    },

    async put(key, source, options) {
      assertLockedKey(key);
      assertRetainUntil(options.retainUntil);
      const retainUntil = ceilToSecond(options.retainUntil);
      if (await head(key)) throw new StorageKeyExistsError(`An object is already stored under ${key}.`);
      let size = 0;
      let sourceError: unknown;
      async function* counted(): AsyncGenerator<Uint8Array> {
        try {
          for await (const chunk of source) {
            size += chunk.byteLength;
            yield chunk;
          }
        } catch (err) {
          sourceError = err;
          throw err;
        }
      }
      const upload = new Upload({
        client,
        partSize,
        queueSize,
        leavePartsOnError: false, // abort the multipart upload on failure: nothing left but what a crash leaves
        params: {
          Bucket,
          Key: objectKey(key),
          Body: Readable.from(counted(), { objectMode: false }),
          ContentType: 'application/octet-stream',
          IfNoneMatch: '*',
          ObjectLockMode: 'COMPLIANCE',
          ObjectLockRetainUntilDate: retainUntil,
          Metadata: { [RETAIN_UNTIL_METADATA]: retainUntil.toISOString() },
        },
      });
      try {
        await upload.done();
      } catch (err) {
        // The source's own error first: the abort that follows it may fail too (and hide it).
        if (sourceError !== undefined) throw sourceError;
        if (isKeyTaken(err)) throw new StorageKeyExistsError(`An object is already stored under ${key}.`, { cause: err });
        throw err;
      }
      return { size };
    },

    async digest(key) {
      return hashStream((await store.get(key)).body);
    },

    async get(key, options) {
      assertKey(key);
      const start = options?.start ?? 0;
      if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`Cannot read ${key} from byte ${start}.`);
      let response;
      try {
        // No Range for a whole read: `bytes=0-` is refused on an empty object.
        response = await client.send(new GetObjectCommand({ Bucket, Key: objectKey(key), Range: start > 0 ? `bytes=${start}-` : undefined }));
      } catch (err) {
        if (isNotFound(err)) throw new StorageNotFoundError(`Nothing is stored under ${key}.`, { cause: err });
        if (errorName(err) !== 'InvalidRange') throw err;
        // 416: start is at or past the end; at the end is a valid, empty read.
        const h = await head(key);
        if (!h) throw new StorageNotFoundError(`Nothing is stored under ${key}.`, { cause: err });
        const size = h.ContentLength ?? 0;
        assertStart(key, start, size);
        return { body: Readable.from([]), size };
      }
      const total = start > 0 ? Number(/\/(\d+)$/.exec(response.ContentRange ?? '')?.[1]) : response.ContentLength;
      if (!(response.Body instanceof Readable) || total === undefined || !Number.isSafeInteger(total)) {
        throw new Error(`Unexpected GetObject answer for ${key} (no stream body or no size).`);
      }
      return { body: response.Body, size: total };
    },

    async stat(key) {
      assertKey(key);
      const h = await head(key);
      if (!h) return undefined;
      return { key, size: h.ContentLength ?? 0, modifiedAt: h.LastModified ?? new Date(0), retainUntil: lockFromHead(key, h) };
    },

    async extendRetention(key, later) {
      assertLockedKey(key);
      assertRetainUntil(later);
      const retainUntil = ceilToSecond(later);
      const h = await head(key);
      if (!h) throw new StorageNotFoundError(`Nothing is stored under ${key}.`);
      const current = await knownRetainUntil(key, h);
      if (current && retainUntil <= current) return; // never shortened (the store would refuse it anyway in compliance mode)
      try {
        await client.send(new PutObjectRetentionCommand({ Bucket, Key: objectKey(key), VersionId: h.VersionId, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: retainUntil } }));
      } catch (err) {
        throw new Error(`Backup location "${name}": could not extend the lock of ${key} to ${retainUntil.toISOString()}: the store refused PutObjectRetention (${errorName(err)}); it needs an Object Lock bucket.`, { cause: err });
      }
    },

    async delete(key) {
      assertLockedKey(key);
      const h = await head(key);
      if (!h) return false;
      const retainUntil = await knownRetainUntil(key, h);
      if (retainUntil && clock.now() < retainUntil) throw new ObjectLockedError(key, retainUntil);
      // The exact version checked: without it, a versioned bucket only adds a delete marker.
      await client.send(new DeleteObjectCommand({ Bucket, Key: objectKey(key), VersionId: h.VersionId }));
      return true;
    },

    async *list(listPrefix) {
      const trimmed = listPrefix.replace(/\/+$/, '');
      if (trimmed !== '') assertKey(trimmed);
      const Prefix = trimmed === '' ? base : `${base}${trimmed}/`; // whole segments: "tenants/a" never lists "tenants/ab"
      let ContinuationToken: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix, MaxKeys: listPageSize, ContinuationToken }));
        // ListObjectsV2 does not return locks: one HeadObject per object, a few at a time.
        const contents = (page.Contents ?? []).filter((c) => c.Key !== undefined);
        for (let i = 0; i < contents.length; i += 8) {
          const batch = await Promise.all(
            contents.slice(i, i + 8).map(async (c): Promise<LockedObject | undefined> => {
              const key = c.Key!.slice(base.length);
              const object: LockedObject = { key, size: c.Size ?? 0, modifiedAt: c.LastModified ?? new Date(0), retainUntil: null };
              if (isMutableKey(key)) return object;
              const h = await head(key);
              return h ? { ...object, retainUntil: lockFromHead(key, h) } : undefined; // deleted meanwhile
            }),
          );
          for (const object of batch) if (object) yield object;
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async putMutable(key, body) {
      assertMutableKey(key);
      await client.send(new PutObjectCommand({ Bucket, Key: objectKey(key), Body: body, ContentType: 'application/octet-stream' }));
    },

    async getMutable(key) {
      assertMutableKey(key);
      try {
        const response = await client.send(new GetObjectCommand({ Bucket, Key: objectKey(key) }));
        if (!response.Body) return Buffer.alloc(0);
        return Buffer.from(await response.Body.transformToByteArray());
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    },

    async deleteMutable(key) {
      assertMutableKey(key);
      const Key = objectKey(key);
      let versions: Array<{ VersionId?: string; marker: boolean }>;
      try {
        // Every version and delete marker of exactly this key (the prefix also matches longer keys).
        versions = [];
        let KeyMarker: string | undefined;
        let VersionIdMarker: string | undefined;
        do {
          const page = await client.send(new ListObjectVersionsCommand({ Bucket, Prefix: Key, KeyMarker, VersionIdMarker }));
          for (const v of page.Versions ?? []) if (v.Key === Key) versions.push({ VersionId: v.VersionId, marker: false });
          for (const m of page.DeleteMarkers ?? []) if (m.Key === Key) versions.push({ VersionId: m.VersionId, marker: true });
          [KeyMarker, VersionIdMarker] = page.IsTruncated ? [page.NextKeyMarker, page.NextVersionIdMarker] : [undefined, undefined];
        } while (KeyMarker !== undefined);
      } catch (err) {
        // Only a store without the versioning API gets the plain delete (which is then complete);
        // any other failure must not turn into a delete marker that leaves the key readable.
        if (!['NotImplemented', 'MethodNotAllowed'].includes(errorName(err))) throw err;
        if (!(await head(key))) return false;
        await client.send(new DeleteObjectCommand({ Bucket, Key }));
        return true;
      }
      for (const v of versions) await client.send(new DeleteObjectCommand({ Bucket, Key, VersionId: v.VersionId }));
      return versions.some((v) => !v.marker);
    },
  };
  return store;
}
