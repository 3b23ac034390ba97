/**
 * One export archive (EXP-1, EXP-2), written as a stream into `out` (a zip: it opens everywhere):
 *
 *   README.txt                 the formats, in the requesting member's language
 *   csv/<table>.csv            RFC 4180, UTF-8, header row, CRLF; null = empty field, empty text = ""
 *   json/<table>.jsonl         JSON Lines: one object per row, keyed by column
 *   xml/<table>.xml            <table name><columns/><rows><row><column>…</column></row></rows></table>
 *   havre.xlsx                 a workbook, one sheet per table (long tables continue on "<table> (2)"…)
 *   attachments/<id>/<name>    every attachment's bytes
 *   manifest.json              LAST: tables (columns, row counts), every file's size and SHA-256
 *
 * Constant memory: every table is read in the caller's snapshot, once per format — for CSV as
 * PostgreSQL's own `COPY (SELECT …) TO STDOUT (FORMAT csv, HEADER)` streamed through, for the others
 * through a cursor — and each entry is hashed while it passes, so the manifest (written last) costs
 * no second read. The caller reads inside ONE repeatable-read transaction: every format shows the
 * same data. Entries are deflated at level 1, zlib's fastest (the CSV shrinks about 2.9 times
 * instead of 3.2 at level 6, for a third of the CPU), by src/lib/zip/zip-writer.ts: in 1 MiB
 * blocks on worker threads, alongside the reading; attachments and the workbook (deflated inside)
 * are stored.
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { ZipWriter } from '../../lib/zip/zip-writer.ts';
import { exportReadme } from './export-readme.ts';
import { CsvRecordEnds, jsonLine, SHEET_HEAD, SHEET_TAIL, sheetName, workbookParts, XLSX_MAX_ROWS, xlsxRow, xmlHead, xmlRow, XML_TAIL, type ColumnInfo } from './formats.ts';
import { readRows, selectRows, type TableInfo } from './tenant-tables.ts';

export const MANIFEST_FORMAT = 'havre-export';
export const MANIFEST_VERSION = 1;
/** The deflate level of every compressed entry: zlib's fastest. */
export const DEFLATE_LEVEL = 1;

export interface FileFact {
  path: string;
  size: number;
  sha256: string;
}

export interface ManifestTable {
  name: string;
  rows: number;
  columns: ColumnInfo[];
  primaryKey: string[];
  csv: string;
  json: string;
  xml: string;
  xlsxSheets: string[];
}

export interface ManifestAttachment {
  id: string;
  fileName: string;
  path: string;
  size: number;
  sha256: string;
}

/** manifest.json: what is in the archive, and how to check it. */
export interface ExportManifest {
  format: typeof MANIFEST_FORMAT;
  formatVersion: typeof MANIFEST_VERSION;
  exportId: string;
  tenant: { id: string; name: string };
  takenAt: string;
  schemaVersion: number;
  tables: ManifestTable[];
  attachments: ManifestAttachment[];
  /** Every file of the archive but the manifest itself. */
  files: FileFact[];
}

export interface ExportProgress {
  phase: 'csv' | 'json' | 'xml' | 'xlsx' | 'attachments' | 'finishing';
  /** Table files written so far (a table counts once per format: csv, json, xml, xlsx). */
  tablesDone: number;
  tablesTotal: number;
  rowsWritten: number;
  rowsTotal: number;
}

export interface ArchiveInput {
  /** A connection inside the export's repeatable-read, read-only transaction. */
  client: pg.ClientBase;
  tables: readonly TableInfo[];
  counts: ReadonlyMap<string, number>;
  exportId: string;
  tenant: { id: string; name: string };
  takenAt: Date;
  schemaVersion: number;
  locale: 'fr' | 'en';
  /** The stored bytes of an attachment. */
  openAttachment(id: string): Promise<Readable>;
  /** Called after every table file and every few thousand rows (the caller throttles its writes). */
  onProgress(progress: ExportProgress): Promise<void>;
}

/** The archive's name for an attachment: its id, then its file name (never `.`/`..`, which zip readers refuse). */
export function attachmentPath(id: string, fileName: string): string {
  const safe = fileName === '.' || fileName === '..' ? fileName.replace(/\./g, '_') : fileName;
  return `attachments/${id}/${safe}`;
}

/** A pass-through that hashes and counts what goes through (the whole archive; the bench's too). */
export function hashing(): { stream: Transform; fact: () => { size: number; sha256: string } } {
  const hash = createHash('sha256');
  let size = 0;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  return { stream, fact: () => ({ size, sha256: hash.digest('hex') }) };
}

/** Strings from a generator as UTF-8 buffers, batched to ~64 KiB (a chunk per row would be slow). */
async function* batched(lines: AsyncIterable<string>): AsyncGenerator<Buffer> {
  let pending: string[] = [];
  let length = 0;
  for await (const line of lines) {
    pending.push(line);
    length += line.length;
    if (length >= 65_536) {
      yield Buffer.from(pending.join(''));
      pending = [];
      length = 0;
    }
  }
  if (pending.length > 0) yield Buffer.from(pending.join(''));
}

/**
 * Adds one entry to `zip` and resolves once all of `source` is in (with its size and SHA-256).
 * Entries are added one after another: a zip is written in order.
 */
async function addEntry(zip: ZipWriter, path: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, mtime: Date, level = DEFLATE_LEVEL): Promise<FileFact> {
  const hash = createHash('sha256');
  let size = 0;
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      yield chunk;
    }
  }
  await zip.addEntry(path, hashed(), { mtime, level });
  return { path, size, sha256: hash.digest('hex') };
}

/**
 * The bytes of `csv/<table>.csv`: PostgreSQL's own CSV of the export's SELECT (`selectRows`: same
 * columns, text forms and order as the other formats), read with COPY on the caller's connection
 * and snapshot, its record ends turned into CRLF. PostgreSQL already writes what the README
 * promises: a header row of the column names, a field quoted when it holds a quote (doubled), a
 * comma, CR or LF, a null as an empty field and an empty text as `""`. `onRows` hears how many data
 * rows each chunk ended. Throws if the CSV ends inside a quoted field.
 */
export async function* tableCsv(client: pg.ClientBase, table: TableInfo, onRows?: (rows: number) => Promise<void> | void): AsyncGenerator<Buffer> {
  const copy = client.query(copyTo(`COPY (${selectRows(table, true)}) TO STDOUT WITH (FORMAT csv, HEADER true)`));
  const ends = new CsvRecordEnds();
  let complete = false;
  try {
    for await (const chunk of copy.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      const before = Math.max(0, ends.records - 1);
      const out = ends.convert(chunk);
      yield out;
      const rows = Math.max(0, ends.records - 1) - before;
      if (rows > 0 && onRows) await onRows(rows);
    }
    complete = true;
  } finally {
    // Given up half-way (the archive failed): read the rest of the COPY and drop it, so that the
    // connection comes back out of COPY mode and the caller's ROLLBACK is not stuck behind it.
    if (!complete && !copy.destroyed && !copy.readableEnded) {
      copy.on('data', () => {});
      await finished(copy).catch(() => {});
    }
  }
  if (ends.quoted || ends.records === 0) throw new Error(`the CSV of ${table.name} from COPY ended inside a quoted field or without its header`);
}

/**
 * Adds `csv/<table>.csv` to `zip` (see `tableCsv`) and resolves with its facts; throws unless it
 * holds `expectedRows` data rows (the manifest's count, taken in the same snapshot).
 * `compressionLevel` is for the benchmark's comparison; the export uses DEFLATE_LEVEL.
 */
export async function addCsvEntry(zip: ZipWriter, client: pg.ClientBase, table: TableInfo, mtime: Date, expectedRows: number | null, onRows?: (rows: number) => Promise<void> | void, level = DEFLATE_LEVEL): Promise<FileFact & { rows: number }> {
  let rows = 0;
  const source = tableCsv(client, table, (n) => {
    rows += n;
    return onRows?.(n);
  });
  const fact = await addEntry(zip, `csv/${table.name}.csv`, source, mtime, level);
  if (expectedRows !== null && rows !== expectedRows) throw new Error(`csv/${table.name}.csv holds ${rows} rows where the table counted ${expectedRows} in the same snapshot`);
  return { ...fact, rows };
}

/** Writes the archive into `out`; resolves with its size, SHA-256 and manifest once `out` has every byte. */
export async function writeArchive(input: ArchiveInput, out: Writable): Promise<{ sizeBytes: number; sha256: string; manifest: ExportManifest }> {
  const zip = new ZipWriter();
  const whole = hashing();
  const written = pipeline(zip.output, whole.stream, out);
  const fail = (err: unknown) => zip.abort(err as Error);
  try {
    const manifest = await fillArchive(input, zip);
    await written;
    const { size, sha256 } = whole.fact();
    return { sizeBytes: size, sha256, manifest };
  } catch (err) {
    fail(err);
    await written.catch(() => {});
    throw err;
  }
}

async function fillArchive(input: ArchiveInput, zip: ZipWriter): Promise<ExportManifest> {
  const { client, tables, counts, takenAt: mtime } = input;
  const files: FileFact[] = [];
  const rowsTotal = 4 * tables.reduce((sum, t) => sum + (counts.get(t.name) ?? 0), 0);
  const progress: ExportProgress = { phase: 'csv', tablesDone: 0, tablesTotal: 4 * tables.length, rowsWritten: 0, rowsTotal };
  const report = () => input.onProgress({ ...progress });

  /** The lines of a table in one format, counting rows (progress every 5,000). */
  async function* lines(table: TableInfo, head: string, row: (values: (string | null)[]) => string, tail: string): AsyncGenerator<string> {
    yield head;
    for await (const values of readRows(client, table)) {
      yield row(values);
      if (++progress.rowsWritten % 5000 === 0) await report();
    }
    yield tail;
  }

  const readme = Buffer.from(exportReadme(input.locale, { tenantName: input.tenant.name, takenAt: input.takenAt.toISOString(), tables: tables.map((t) => t.name) }));
  files.push(await addEntry(zip, 'README.txt', [readme], mtime));

  progress.phase = 'csv';
  const csvRows = async (n: number) => {
    const before = progress.rowsWritten;
    progress.rowsWritten += n;
    if (Math.floor(progress.rowsWritten / 5000) !== Math.floor(before / 5000)) await report();
  };
  for (const table of tables) {
    const { path, size, sha256 } = await addCsvEntry(zip, client, table, mtime, counts.get(table.name) ?? null, csvRows);
    files.push({ path, size, sha256 });
    progress.tablesDone++;
    await report();
  }

  const formats = [
    { phase: 'json' as const, path: (t: string) => `json/${t}.jsonl`, head: () => '', row: (t: TableInfo) => (v: (string | null)[]) => jsonLine(t.columns, v), tail: () => '' },
    { phase: 'xml' as const, path: (t: string) => `xml/${t}.xml`, head: (t: TableInfo) => xmlHead(t.name, t.columns), row: (t: TableInfo) => (v: (string | null)[]) => xmlRow(t.columns, v), tail: () => XML_TAIL },
  ];
  for (const format of formats) {
    progress.phase = format.phase;
    for (const table of tables) {
      files.push(await addEntry(zip, format.path(table.name), batched(lines(table, format.head(table), format.row(table), format.tail())), mtime));
      progress.tablesDone++;
      await report();
    }
  }

  progress.phase = 'xlsx';
  await report();
  const sheetsOf = new Map<string, string[]>();
  files.push(await writeWorkbook(input, zip, sheetsOf, progress, report));

  progress.phase = 'attachments';
  await report();
  const attachments = tables.some((t) => t.name === 'attachments') ? await addAttachments(input, zip, files) : [];

  progress.phase = 'finishing';
  await report();
  const manifest: ExportManifest = {
    format: MANIFEST_FORMAT,
    formatVersion: MANIFEST_VERSION,
    exportId: input.exportId,
    tenant: input.tenant,
    takenAt: input.takenAt.toISOString(),
    schemaVersion: input.schemaVersion,
    tables: tables.map((t) => ({
      name: t.name,
      rows: counts.get(t.name) ?? 0,
      columns: t.columns,
      primaryKey: t.primaryKey,
      csv: `csv/${t.name}.csv`,
      json: `json/${t.name}.jsonl`,
      xml: `xml/${t.name}.xml`,
      xlsxSheets: sheetsOf.get(t.name) ?? [],
    })),
    attachments,
    files,
  };
  await zip.addEntry('manifest.json', [Buffer.from(JSON.stringify(manifest, null, 2) + '\n')], { mtime, level: DEFLATE_LEVEL });
  await zip.finish();
  return manifest;
}

/** havre.xlsx: a zip inside the zip, its sheets streamed one after another. */
async function writeWorkbook(input: ArchiveInput, zip: ZipWriter, sheetsOf: Map<string, string[]>, progress: ExportProgress, report: () => Promise<void>): Promise<FileFact> {
  const book = new ZipWriter();
  // Its parts are deflated inside; deflating the workbook again would cost CPU for nothing.
  const entry = addEntry(zip, 'havre.xlsx', book.output, input.takenAt, 0);
  const failBook = (err: unknown) => book.abort(err as Error);
  try {
    const sheets: string[] = [];
    for (const table of input.tables) {
      const names: string[] = [];
      const kinds = table.columns.map((c) => c.kind);
      const rows = readRows(input.client, table)[Symbol.asyncIterator]();
      let done = false;
      // Each sheet: the header, then up to XLSX_MAX_ROWS - 1 rows; a table with more goes on.
      for (let part = 1; part === 1 || !done; part++) {
        const name = sheetName(table.name, part);
        names.push(name);
        sheets.push(name);
        async function* sheet(): AsyncGenerator<string> {
          yield SHEET_HEAD + xlsxRow(1, null, table.columns.map((c) => c.name));
          for (let r = 2; r <= XLSX_MAX_ROWS; r++) {
            const next = await rows.next();
            if (next.done) {
              done = true;
              break;
            }
            yield xlsxRow(r, kinds, next.value);
            if (++progress.rowsWritten % 5000 === 0) await report();
          }
          yield SHEET_TAIL;
        }
        await addEntry(book, `xl/worksheets/sheet${sheets.length}.xml`, batched(sheet()), input.takenAt);
      }
      sheetsOf.set(table.name, names);
      progress.tablesDone++;
      await report();
    }
    for (const [path, text] of Object.entries(workbookParts(sheets))) await book.addEntry(path, [Buffer.from(text)], { mtime: input.takenAt, level: DEFLATE_LEVEL });
    await book.finish();
    return await entry;
  } catch (err) {
    failBook(err);
    await entry.catch(() => {});
    throw err;
  }
}

/** attachments/<id>/<name>: each file checked against its row (size, SHA-256) on the way. */
async function addAttachments(input: ArchiveInput, zip: ZipWriter, files: FileFact[]): Promise<ManifestAttachment[]> {
  const listing: TableInfo = {
    name: 'attachments',
    primaryKey: ['id'],
    references: [],
    columns: ['id', 'file_name', 'size_bytes', 'sha256'].map((name) => ({ name, type: 'text', kind: 'text' as const })),
  };
  const out: ManifestAttachment[] = [];
  // The cursor waits between rows while each file streams from storage.
  for await (const [id, fileName, size, sha256] of readRows(input.client, listing, 200) as AsyncGenerator<string[]>) {
    const path = attachmentPath(id!, fileName!);
    const body = await input.openAttachment(id!);
    const fact = await addEntry(zip, path, body as AsyncIterable<Uint8Array>, input.takenAt, 0);
    if (fact.sha256 !== sha256 || fact.size !== Number(size)) throw new Error(`attachment ${id} does not match its record in storage (size or SHA-256 differs): the export stops rather than ship a damaged file`);
    files.push(fact);
    out.push({ id: id!, fileName: fileName!, path, size: fact.size, sha256: fact.sha256 });
  }
  return out;
}

