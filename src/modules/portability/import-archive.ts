/**
 * Import of an export archive (EXP-3) into a new, empty tenant, reproducing it exactly: same ids,
 * same values, same attachment bytes.
 *
 * All or nothing: every table is inserted in ONE transaction of the target database (as its own
 * role), in dependency order, from the JSON Lines files (typed, and exact where XML is not); the
 * attachments are stored under the target's area during that transaction, and removed again if it
 * does not commit. Every file read is checked against the manifest (size and SHA-256) on the way,
 * so a damaged or altered archive is refused, not half-imported. The target must hold no records
 * (409 `tenant_not_empty`): `havre_meta` is locked first, so two imports cannot race.
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type pg from 'pg';
import yauzl from 'yauzl';
import { z } from 'zod';
import { AppError, badRequest, conflict } from '../../lib/errors.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION } from './export-writer.ts';
import { describeTables, ident, type TableInfo } from './tenant-tables.ts';

/** Tables that a new workspace already fills (one settings row): replaced, not counted as records. */
const REPLACED_TABLES: readonly string[] = ['workspace_settings'];
const MAX_ENTRIES = 5_000_000;
const MAX_MANIFEST_BYTES = 512 * 1024 ** 2;
const BATCH_ROWS = 1000;
const BATCH_CHARS = 4 * 1024 ** 2;

const name = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const manifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  formatVersion: z.literal(MANIFEST_VERSION),
  schemaVersion: z.number().int().min(0),
  tables: z.array(z.object({ name, rows: z.number().int().min(0), columns: z.array(z.object({ name })).min(1), json: z.string() })),
  attachments: z.array(z.object({ id: z.uuid(), path: z.string(), size: z.number().int().min(0), sha256 })),
  files: z.array(z.object({ path: z.string(), size: z.number().int().min(0), sha256 })),
});
type Manifest = z.infer<typeof manifestSchema>;

export interface ArchiveImportDeps {
  storage: Storage;
  attachmentKey(tenantDatabaseId: string, attachmentId: string): string;
  withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
}

export interface ImportResult {
  tables: { name: string; rows: number }[];
  attachments: number;
}

const damaged = (reason: string) => badRequest('import_archive_invalid', `This is not a usable Havre export archive: ${reason}.`);

/** Imports the archive at `archivePath` (a zip file on this node) into the tenant database. */
export async function importArchive(deps: ArchiveImportDeps, archivePath: string, tenantDatabaseId: string, onTable?: (table: string, rows: number) => void): Promise<ImportResult> {
  const zip = await yauzl.openPromise(archivePath, { autoClose: false, strictFileNames: false, validateEntrySizes: true }).catch(() => {
    throw damaged('not a readable zip file');
  });
  try {
    const entries = new Map<string, yauzl.Entry>();
    for await (const entry of zip.eachEntry()) {
      entries.set(entry.fileName, entry);
      if (entries.size > MAX_ENTRIES) throw damaged('too many files');
    }
    const files = new Map<string, { size: number; sha256: string }>();

    /** The bytes of an entry, checked against the manifest's size and SHA-256 as they pass. */
    async function* verified(path: string): AsyncGenerator<Buffer> {
      const entry = entries.get(path);
      const expected = files.get(path);
      if (!entry || !expected) throw damaged(`${path} is missing`);
      if (entry.uncompressedSize !== expected.size) throw damaged(`${path} does not have the size the manifest gives`);
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > expected.size) throw damaged(`${path} is longer than the manifest says`);
        hash.update(chunk);
        yield chunk;
      }
      if (size !== expected.size || hash.digest('hex') !== expected.sha256) throw damaged(`${path} does not match its SHA-256 in the manifest`);
    }

    const manifest = await readManifest(zip, entries.get('manifest.json'));
    for (const f of manifest.files) files.set(f.path, f);
    return await insertAll(deps, manifest, tenantDatabaseId, verified, onTable);
  } finally {
    zip.close();
  }
}

async function readManifest(zip: yauzl.ZipFile, entry: yauzl.Entry | undefined): Promise<Manifest> {
  if (!entry) throw damaged('manifest.json is missing');
  if (entry.uncompressedSize > MAX_MANIFEST_BYTES) throw damaged('manifest.json is too large');
  const chunks: Buffer[] = [];
  for await (const chunk of (await zip.openReadStreamPromise(entry)) as AsyncIterable<Buffer>) chunks.push(chunk);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw damaged('manifest.json is not JSON');
  }
  const result = manifestSchema.safeParse(parsed);
  if (!result.success) throw damaged(`manifest.json is not a Havre manifest (${result.error.issues[0]?.path.join('.')}: ${result.error.issues[0]?.message})`);
  return result.data;
}

type Verified = (path: string) => AsyncGenerator<Buffer>;

async function insertAll(deps: ArchiveImportDeps, manifest: Manifest, tenantDatabaseId: string, verified: Verified, onTable?: (table: string, rows: number) => void): Promise<ImportResult> {
  const stored: string[] = [];
  try {
    return await deps.withTenant(tenantDatabaseId, async (client) => {
      await client.query('BEGIN');
      try {
        const { rows: meta } = await client.query<{ schema_version: number }>('SELECT schema_version FROM havre_meta FOR UPDATE');
        const version = meta[0]?.schema_version ?? 0;
        if (version !== manifest.schemaVersion) {
          throw conflict('schema_version_mismatch', `The archive was made at workspace schema version ${manifest.schemaVersion}; this tenant is at ${version}.`, { archive: manifest.schemaVersion, tenant: version });
        }
        const targets = await describeTables(client);
        const byName = new Map(targets.map((t) => [t.name, t]));
        checkShape(manifest, byName);
        await assertEmpty(client, targets);
        const result: ImportResult = { tables: [], attachments: 0 };
        for (const target of targets) {
          const source = manifest.tables.find((t) => t.name === target.name);
          if (!source) continue;
          if (REPLACED_TABLES.includes(target.name)) await client.query(`DELETE FROM ${ident(target.name)}`);
          const rows = await insertTable(client, target, source.columns.map((c) => c.name), verified(source.json));
          if (rows !== source.rows) throw damaged(`${source.json} has ${rows} rows, the manifest says ${source.rows}`);
          result.tables.push({ name: target.name, rows });
          onTable?.(target.name, rows);
        }
        for (const attachment of manifest.attachments) {
          const { rows } = await client.query<{ sha256: string; size_bytes: string }>('SELECT sha256, size_bytes FROM attachments WHERE id = $1', [attachment.id]);
          if (rows[0]?.sha256 !== attachment.sha256 || Number(rows[0].size_bytes) !== attachment.size) throw damaged(`attachment ${attachment.id} does not match its row`);
          const key = deps.attachmentKey(tenantDatabaseId, attachment.id);
          stored.push(key);
          await deps.storage.put(key, verified(attachment.path));
          result.attachments++;
        }
        if (byName.has('attachments')) {
          const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM attachments');
          if (Number(rows[0]!.n) !== manifest.attachments.length) throw damaged('the attachments table and the attached files differ');
        }
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      }
    });
  } catch (err) {
    // Nothing of a failed import stays: the transaction rolled back, and its files go too.
    for (const key of stored) await deps.storage.delete(key).catch(() => {});
    throw mapImportError(err);
  }
}

/** Every table and column of the archive must exist in the target (an archive from a newer Havre does not fit). */
function checkShape(manifest: Manifest, targets: Map<string, TableInfo>): void {
  for (const table of manifest.tables) {
    const target = targets.get(table.name);
    if (!target) throw conflict('schema_mismatch', `The archive has a table ${table.name} this workspace does not have.`, { table: table.name });
    for (const column of table.columns) {
      if (!target.columns.some((c) => c.name === column.name)) throw conflict('schema_mismatch', `The archive has a column ${table.name}.${column.name} this workspace does not have.`, { table: table.name, column: column.name });
    }
  }
}

/** 409 unless every table (but the replaced ones) is empty. */
async function assertEmpty(client: pg.ClientBase, targets: readonly TableInfo[]): Promise<void> {
  for (const table of targets) {
    if (REPLACED_TABLES.includes(table.name)) continue;
    const { rows } = await client.query(`SELECT 1 FROM ${ident(table.name)} LIMIT 1`);
    if (rows.length > 0) throw conflict('tenant_not_empty', 'An archive imports only into a new, empty tenant: this one already has records.', { table: table.name });
  }
}

/** Inserts the JSON Lines of one table in batches; returns the row count. */
async function insertTable(client: pg.ClientBase, table: TableInfo, columns: string[], lines: AsyncIterable<Buffer>): Promise<number> {
  const list = columns.map(ident).join(', ');
  const text = `INSERT INTO ${ident(table.name)} (${list}) SELECT ${list} FROM jsonb_populate_recordset(NULL::${ident(table.name)}, $1::jsonb)`;
  let batch: string[] = [];
  let chars = 0;
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await client.query(text, [`[${batch.join(',')}]`]);
    count += batch.length;
    batch = [];
    chars = 0;
  };
  const decoder = new StringDecoder('utf8');
  let rest = '';
  const take = async (line: string) => {
    if (line.trim() === '') return;
    batch.push(line);
    chars += line.length;
    if (batch.length >= BATCH_ROWS || chars >= BATCH_CHARS) await flush();
  };
  for await (const chunk of lines) {
    const parts = (rest + decoder.write(chunk)).split('\n');
    rest = parts.pop()!;
    for (const line of parts) await take(line);
  }
  await take(rest + decoder.end());
  await flush();
  return count;
}

/** Data that PostgreSQL refuses becomes a 400 naming the constraint; AppErrors pass. */
function mapImportError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const e = err as { code?: string; constraint?: string; table?: string };
  if (typeof e.code === 'string' && /^(22|23)/.test(e.code)) {
    return badRequest('import_data_invalid', 'The archive holds data this workspace refuses; nothing was imported.', { ...(e.table && { table: e.table }), ...(e.constraint && { constraint: e.constraint }) });
  }
  return err;
}

