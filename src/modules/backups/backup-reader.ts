/**
 * Reading a backup back: choosing a good copy, decrypting it, restoring it into a database, and
 * comparing the result with the manifest. Used by verification (BKP-4), download and restore
 * (BKP-5).
 *
 * A copy is used only after its stored bytes hash to the SHA-256 recorded when it was written; a
 * copy that does not (a flipped bit, a truncated file) is marked `corrupt`, reported, and the next
 * location's copy is used. The chunk authentication of the format is a second, independent check.
 */
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import pg from 'pg';
import tar from 'tar-stream';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { attachmentKey } from '../workspace/attachments-service.ts';
import { decryptStream } from './backup-crypto.ts';
import { hashStream } from '../../lib/crypto.ts';
import { hashing } from './fan-out.ts';
import { compareFacts, pgRestore, tableFacts } from './pg-process.ts';
import type { BackupManifest } from './backup-writer.ts';
import type { BackupPart } from './backups-tables.ts';
import type { CopyRow } from './backups-repo.ts';

export interface ReaderDeps {
  stores: readonly BackupStore[];
  keyById(keyId: string): Promise<Buffer>;
  /** Told when a copy turns out corrupt (marks it, alerts the operator). */
  onCorrupt(copy: CopyRow, reason: string): Promise<void>;
}

export class NoGoodCopyError extends Error {
  override name = 'NoGoodCopyError';
}

/** A good copy of `part` (hash checked), opened and decrypted. */
export async function openPart(deps: ReaderDeps, copies: readonly CopyRow[], part: BackupPart): Promise<{ plain: Readable; location: string }> {
  const candidates = copies.filter((c) => c.part === part && c.state === 'checked');
  const problems: string[] = [];
  for (const copy of candidates) {
    const store = deps.stores.find((s) => s.name === copy.location);
    if (!store) {
      problems.push(`${copy.location}: location not configured`);
      continue;
    }
    try {
      const read = await store.digest(copy.object_key);
      if (read.sha256 !== copy.sha256 || read.size !== Number(copy.size_bytes)) {
        problems.push(`${copy.location}: SHA-256 mismatch`);
        await deps.onCorrupt(copy, 'its stored bytes no longer match the SHA-256 recorded when it was written');
        continue;
      }
      const { body } = await store.get(copy.object_key);
      const decrypt = decryptStream((keyId) => deps.keyById(keyId));
      body.on('error', (err) => decrypt.destroy(err));
  decrypt.on('error', () => {});
      return { plain: body.pipe(decrypt), location: copy.location };
    } catch (err) {
      problems.push(`${copy.location}: ${(err as Error).message}`);
    }
  }
  throw new NoGoodCopyError(`no good copy of the ${part} part: ${problems.join('; ') || 'none stored'}`);
}

/**
 * One given copy, decrypted as it streams, without reading it first (verification checks every
 * copy's SHA-256 alongside; the chunk authentication stops a bad byte from passing).
 */
export async function streamCopy(deps: ReaderDeps, copy: CopyRow): Promise<Readable> {
  const store = deps.stores.find((s) => s.name === copy.location);
  if (!store) throw new NoGoodCopyError(`${copy.location}: location not configured`);
  const { body } = await store.get(copy.object_key);
  const decrypt = decryptStream((keyId) => deps.keyById(keyId));
  body.on('error', (err) => decrypt.destroy(err));
  decrypt.on('error', () => {});
  return body.pipe(decrypt);
}

/**
 * Restores the database part into `target` (pg_restore in one transaction). `gzip`: the part is
 * gzip around the archive (format /2, `databaseIsGzip`): inflated on the way by zlib, whose
 * trailer check (CRC-32 and size) is one more proof that every byte came back.
 */
export async function restoreDatabase(plain: Readable, target: pg.ClientConfig, gzip: boolean): Promise<void> {
  const restore = pgRestore(target);
  const fed = gzip ? pipeline(plain, zlib.createGunzip({ chunkSize: 256 * 1024 }), restore.stdin) : pipeline(plain, restore.stdin);
  const [a, b] = await Promise.allSettled([fed, restore.done]);
  if (b.status === 'rejected') throw b.reason;
  if (a.status === 'rejected') throw a.reason;
}

/** Row counts and checksums of `target` compared with the manifest; the differences in words. */
export async function compareWithManifest(target: pg.ClientConfig, manifest: BackupManifest): Promise<string[]> {
  const client = new pg.Client(target);
  await client.connect();
  try {
    await client.query('BEGIN READ ONLY');
    const facts = await tableFacts(client);
    await client.query('ROLLBACK');
    return compareFacts(manifest.tables, facts);
  } finally {
    await client.end();
  }
}

/**
 * Reads the files part (a tar) and checks every file against the manifest. With `files` and
 * `tenantDatabaseId`, also stores each file under that tenant database's attachment area.
 */
export async function readFiles(plain: Readable, manifest: BackupManifest, into?: { files: Storage; tenantDatabaseId: string }): Promise<string[]> {
  const expected = new Map(manifest.files.map((f) => [f.id, f]));
  const seen = new Set<string>();
  const problems: string[] = [];
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const id = header.name.replace(/^attachments\//, '');
      const file = expected.get(id);
      const hash = hashing();
      const entry = (stream as unknown as Readable).pipe(hash);
      const work = file && into ? into.files.put(attachmentKey(into.tenantDatabaseId, id), entry).then(() => undefined) : hashStream(entry).then(() => undefined);
      work.then(
        () => {
          if (!file) problems.push(`unexpected file ${header.name}`);
          else if (hash.digest() !== file.sha256) problems.push(`file ${id}: SHA-256 differs`);
          seen.add(id);
          next();
        },
        (err: Error) => next(err),
      );
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  await Promise.all([pipeline(plain, extract), done]);
  for (const id of expected.keys()) if (!seen.has(id)) problems.push(`file ${id} is missing`);
  return problems;
}

/** The manifest as stored (decrypted) — the disaster-recovery path reads it from a location. */
export async function readManifest(plain: Readable): Promise<BackupManifest> {
  const chunks: Buffer[] = [];
  for await (const c of plain) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as BackupManifest;
}
