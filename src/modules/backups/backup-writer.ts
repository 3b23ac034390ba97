/**
 * Taking one full backup of one tenant (BKP-1, BKP-3, BKP-6): everything as of ONE snapshot.
 *
 *  1. As the tenant's role, a REPEATABLE READ transaction exports its snapshot and reads the list
 *     of attachments in it.
 *  2. `pg_dump -Fc --snapshot=…` (same instant; with igzip installed, `--compress=0` piped into
 *     igzip: format /2, see MANIFEST_FORMAT) → AES-256-GCM chunks (backup-crypto.ts) → written
 *     to every location at once (fan-out.ts), hashed on the way; at the same time, the attachments
 *     of that snapshot as a tar (each file checked against its recorded SHA-256), likewise.
 *  3. Still in the snapshot, the row count and checksum of every table, while every copy written
 *     so far is read back and hashed (`BackupStore.digest`).
 *  4. The manifest (tables, files, parts with sizes and SHA-256) → encrypted → every location,
 *     read back too. The backup is complete only if every copy matches everywhere.
 *
 * Memory stays constant: bytes flow from pg_dump and the file store to the locations in chunks.
 * A kill at any point leaves the row `running` (its lease then lapses and it is marked failed)
 * and only invisible leftovers in the locations (drivers store atomically).
 */
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import tar from 'tar-stream';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { attachmentKey } from '../workspace/attachments-service.ts';
import { encryptStream } from './backup-crypto.ts';
import { fanOut, hashing } from './fan-out.ts';
import { bufferReleaser } from '../../lib/buffer-release.ts';
import { pgDump, pgDumpGzip, tableFacts, type TableFacts } from './pg-process.ts';
import { igzipAvailable } from '../../lib/igzip.ts';
import type { BackupSubject } from './backups-repo.ts';
import type { BackupPart } from './backups-tables.ts';

/**
 * `havre-backup/1`: the database part is `pg_dump -Fc --compress=<compression>` (pg_dump's zlib);
 * `havre-backup/2`: it is a gzip stream (ISA-L's igzip) of `pg_dump -Fc --compress=0`. New backups
 * are /2 where igzip is installed and compression is on, /1 otherwise; both are read.
 */
export const MANIFEST_FORMAT = 'havre-backup/2';
export type ManifestFormat = 'havre-backup/1' | 'havre-backup/2';

/**
 * Whether the database part of a backup of this format is gzip around the pg_dump archive; throws
 * for a format this Havre does not know (a newer one: never guess, pg_restore would fail obscurely).
 */
export function databaseIsGzip(manifest: { format: string }): boolean {
  if (manifest.format === 'havre-backup/2') return true;
  if (manifest.format === 'havre-backup/1') return false;
  throw new Error(`backup format ${JSON.stringify(manifest.format)} is unknown to this version of Havre (it reads havre-backup/1 and /2): upgrade Havre to read it`);
}
/** The workspace schema version that brought attachments (schema/0003_attachments.sql). */
const ATTACHMENTS_SINCE_VERSION = 3;

export interface PartFacts {
  /** Bytes of the stored (encrypted) object. */
  size: number;
  /** SHA-256 of the stored (encrypted) object. */
  sha256: string;
  /** Bytes before encryption (the pg_dump archive, the tar). */
  plainSize: number;
}

export interface BackupManifest {
  format: ManifestFormat;
  backupId: string;
  tenant: { id: string; name: string; region: string };
  tenantDatabaseId: string;
  server: string;
  postgresVersion: string;
  schemaVersion: number;
  takenAt: string;
  keyId: string;
  compression: number;
  tables: TableFacts[];
  files: { id: string; size: number; sha256: string }[];
  parts: { database: PartFacts; files: PartFacts };
}

export interface CopyOutcome {
  location: string;
  part: BackupPart;
  key: string;
  ok: boolean;
  size: number;
  sha256: string;
  error?: string;
}

export interface WriteOutcome {
  manifest: BackupManifest;
  /** The manifest part's own facts (it cannot list itself). */
  manifestPart: PartFacts;
  copies: CopyOutcome[];
}

export function partKey(tenantId: string, backupId: string, part: BackupPart): string {
  return `backups/${tenantId}/${backupId}/${part}.hvr`;
}

export interface WriterDeps {
  stores: readonly BackupStore[];
  files: Storage;
  withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  target(tenantDatabaseId: string): Promise<pg.ClientConfig>;
  compression: number;
}

/** Counts the bytes passing through, and lets `released` know of them (src/lib/buffer-release.ts). */
async function* counted(source: AsyncIterable<Uint8Array>, count: { bytes: number }, released: { note(bytes: number): void }): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    count.bytes += chunk.length;
    released.note(chunk.length);
    yield chunk;
  }
}

/** Writes `plain` encrypted to every store under `key`; the failure of one store does not stop the others. */
async function storeEverywhere(deps: WriterDeps, plain: AsyncIterable<Uint8Array>, key: string, keyMaterial: { key: Buffer; keyId: string }, retainUntil: Date, part: BackupPart) {
  const encryptor = encryptStream(keyMaterial.key, keyMaterial.keyId);
  const count = { bytes: 0 };
  // Socket reads and cipher output are fresh Buffers: released as they die, not 64 MiB later.
  const released = bufferReleaser();
  const feeding = pipeline(counted(plain, count, released), encryptor);
  const written = fanOut(counted(encryptor, { bytes: 0 }, released), deps.stores.map((s) => (input: Readable) => s.put(key, input, { retainUntil })));
  const [fed, out] = await Promise.allSettled([feeding, written]);
  if (fed.status === 'rejected') throw fed.reason;
  if (out.status === 'rejected') throw out.reason;
  const facts: PartFacts = { size: out.value.size, sha256: out.value.sha256, plainSize: count.bytes };
  const failures = out.value.results.map((r, i) => ({ store: deps.stores[i]!, error: r.status === 'rejected' ? String((r.reason as Error)?.message ?? r.reason) : undefined }));
  return { facts, failures: failures.map((f) => ({ location: f.store.name, part, key, error: f.error })) };
}

/**
 * The database part's bytes (format /2: gzip of the pg_dump archive, /1: the archive) as a stream
 * that fails (before its end is passed on) when pg_dump or igzip fails.
 */
async function* dumpBytes(target: pg.ClientConfig, snapshot: string, compression: number, format: ManifestFormat): AsyncGenerator<Uint8Array> {
  const dump = databaseIsGzip({ format }) ? pgDumpGzip(target, { snapshot, level: compression }) : pgDump(target, { snapshot, compression });
  try {
    for await (const chunk of dump.stdout) yield chunk as Uint8Array;
    await dump.done;
  } finally {
    dump.kill();
  }
}

/** A tar of the listed attachments, each checked against its recorded size and SHA-256. */
async function* filesTar(files: Storage, tenantDatabaseId: string, list: BackupManifest['files']): AsyncGenerator<Uint8Array> {
  const pack = tar.pack();
  const feeding = (async () => {
    for (const f of list) {
      const { body, size } = await files.get(attachmentKey(tenantDatabaseId, f.id));
      if (size !== f.size) throw new Error(`attachment ${f.id}: ${size} bytes stored, ${f.size} recorded`);
      const hash = hashing();
      const entry = pack.entry({ name: `attachments/${f.id}`, size, mtime: new Date(0), mode: 0o644 });
      await pipeline(body, hash, entry);
      if (hash.digest() !== f.sha256) throw new Error(`attachment ${f.id}: its bytes do not match its recorded SHA-256`);
    }
    pack.finalize();
  })();
  feeding.catch((err: Error) => pack.destroy(err));
  for await (const chunk of pack) yield chunk as Uint8Array;
  await feeding;
}

/**
 * Writes every part of backup `backupId` of `subject` to every location, then reads each copy
 * back. Throws when the tenant cannot be dumped (nothing usable was made); otherwise returns the
 * manifest and the outcome of every copy (some may have failed: the caller decides complete or
 * incomplete).
 */
export async function writeBackup(deps: WriterDeps, subject: BackupSubject, backupId: string, keyMaterial: { key: Buffer; keyId: string }, retainUntil: Date, clock: { now(): Date }): Promise<WriteOutcome> {
  const target = await deps.target(subject.tenant_database_id);
  const format: ManifestFormat = deps.compression > 0 && igzipAvailable() ? MANIFEST_FORMAT : 'havre-backup/1';
  const failures: { location: string; part: BackupPart; key: string; error: string | undefined }[] = [];

  /** Every copy of `part` read back and hashed (never rejects: a failure is an outcome). */
  const readBack = (part: BackupPart, expected: PartFacts): Promise<CopyOutcome[]> =>
    Promise.all(
      deps.stores.map(async (store): Promise<CopyOutcome> => {
        const key = partKey(subject.tenant_id, backupId, part);
        const failed = failures.find((f) => f.location === store.name && f.part === part && f.error !== undefined);
        if (failed) return { location: store.name, part, key, ok: false, size: 0, sha256: '', error: failed.error };
        try {
          const read = await store.digest(key);
          const ok = read.sha256 === expected.sha256 && read.size === expected.size;
          return { location: store.name, part, key, ok, size: read.size, sha256: read.sha256, ...(!ok && { error: 'read back with a different SHA-256' }) };
        } catch (err) {
          return { location: store.name, part, key, ok: false, size: 0, sha256: '', error: (err as Error).message };
        }
      }),
    );
  const checks: Promise<CopyOutcome[]>[] = [];

  const manifest = await deps.withTenant(subject.tenant_database_id, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    try {
      const { rows } = await client.query<{ snapshot: string; version: string }>(`SELECT pg_export_snapshot() AS snapshot, current_setting('server_version') AS version`);
      const { snapshot, version } = rows[0]!;
      // Business time (the clock Havre's jobs run on), taken as the snapshot is exported.
      const takenAt = clock.now();
      // The workspace schema version inside the database says whether attachments exist (version 3+),
      // not the presence of a table of that name (a tenant may have made its own).
      const schemaVersion = (await client.query<{ v: number }>('SELECT schema_version AS v FROM havre_meta')).rows[0]?.v ?? 0;
      const fileList = schemaVersion >= ATTACHMENTS_SINCE_VERSION
        ? (await client.query<{ id: string; size: string; sha256: string }>('SELECT id, size_bytes::text AS size, sha256 FROM attachments ORDER BY id')).rows.map((r) => ({ id: r.id, size: Number(r.size), sha256: r.sha256 }))
        : [];
      // pg_dump (its own connection, same snapshot) and the files at once.
      const settled = await Promise.allSettled([
        storeEverywhere(deps, dumpBytes(target, snapshot, deps.compression, format), partKey(subject.tenant_id, backupId, 'database'), keyMaterial, retainUntil, 'database'),
        storeEverywhere(deps, filesTar(deps.files, subject.tenant_database_id, fileList), partKey(subject.tenant_id, backupId, 'files'), keyMaterial, retainUntil, 'files'),
      ] as const);
      const rejected = settled.find((r) => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      const [database, filesPart] = settled.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof storeEverywhere>>>).value) as [Awaited<ReturnType<typeof storeEverywhere>>, Awaited<ReturnType<typeof storeEverywhere>>];
      failures.push(...database.failures, ...filesPart.failures);
      // Then, still in the snapshot, the table facts (a full scan of every table) while the copies
      // just written are read back: the scan is PostgreSQL's work, the read-back the disk's and a
      // hash, so they overlap well. (Run during pg_dump instead, the scan competed with pg_dump for
      // the CPU: on two cores the take lasted the same, bench/results/backup.md.)
      checks.push(readBack('database', database.facts), readBack('files', filesPart.facts));
      const tables = await tableFacts(client);
      const m: BackupManifest = {
        format,
        backupId,
        tenant: { id: subject.tenant_id, name: subject.name, region: subject.region },
        tenantDatabaseId: subject.tenant_database_id,
        server: subject.server_name,
        postgresVersion: version,
        schemaVersion,
        takenAt: takenAt.toISOString(),
        keyId: keyMaterial.keyId,
        compression: deps.compression,
        tables,
        files: fileList,
        parts: { database: database.facts, files: filesPart.facts },
      };
      return m;
    } finally {
      await client.query('ROLLBACK').catch(() => {});
    }
  });

  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
  const manifestPart = await storeEverywhere(deps, (async function* () {
    yield manifestBytes;
  })(), partKey(subject.tenant_id, backupId, 'manifest'), keyMaterial, retainUntil, 'manifest');
  failures.push(...manifestPart.failures);
  checks.push(readBack('manifest', manifestPart.facts));
  const copies = (await Promise.all(checks)).flat();
  return { manifest, manifestPart: manifestPart.facts, copies };
}
