/**
 * Export benchmark (issue 6, EXP-1/EXP-2): "full CSV export of a 1 GB tenant versus raw
 * `COPY … TO STDOUT` of the same tables in the same run (target ≥ 0.8 × raw throughput, constant
 * memory)".
 *
 * One tenant whose workspace database holds at least 1 GiB (filled as the tenant role, as
 * backup.bench.ts does). Havre has no CSV-only export: `exports.start` always writes one zip with
 * every table as CSV, JSON Lines, XML and an XLSX sheet (plus README, attachments, manifest). So
 * three Havre runs are measured, each between two raw runs:
 *
 *  (a1) CSV generation alone: the export's CSV path for every table (same snapshot settings,
 *       `describeTables`, `countRows`, `readRows` cursor, `csvLine`, 64 KiB batches), the bytes
 *       counted and discarded — exactly what the raw side does with COPY's bytes.
 *  (a2) The CSV part of the archive as the export writes it: (a1) plus, per table, a SHA-256 of
 *       the entry and a deflated zip entry (src/lib/zip: igzip when installed), the zip hashed and
 *       written to a file, fsynced. Then, for the choices: (a2s) the same entries stored, (a2z)
 *       deflated by zlib on worker threads (a machine without igzip).
 *  (b)  The complete archive through `portability.exports.start(…)` / `done` (the path of the
 *       API and of `havre export`).
 *
 * Raw: `COPY <table> TO STDOUT (FORMAT csv, HEADER)` of every exported table, as the tenant role
 * (its own login, through `pg`), in one repeatable-read read-only transaction, bytes counted and
 * discarded. Node's RSS (and heapUsed/external) is sampled every 100 ms during every run.
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { filledBenchTenant, MB } from './workspace-fill.ts';
import { ZipWriter } from '../src/lib/zip/zip-writer.ts';
import { igzipAvailable } from '../src/lib/igzip.ts';
import { countRows, describeTables, ident } from '../src/modules/portability/tenant-tables.ts';
import { addCsvEntry, hashing, tableCsv } from '../src/modules/portability/export-writer.ts';
import { machine, startBenchHavre, type BenchResult } from './bench-kit.ts';

/** The CSV path measured is the export's own (export-writer.ts `tableCsv` / `addCsvEntry`). */
const OWN_CSV_PATH = true;

/** The commit and whether the portability sources differ from it (other people edit src/ meanwhile). */
function sourceState(): { commit: string; portabilityModified: string[] } {
  try {
    const git = (args: string[]) => execFileSync('git', args, { cwd: path.join(import.meta.dirname, '..'), encoding: 'utf8' });
    return { commit: git(['rev-parse', '--short', 'HEAD']).trim(), portabilityModified: git(['status', '--porcelain', '--', 'src/modules/portability']).split('\n').filter(Boolean).map((l) => l.slice(3)) };
  } catch {
    return { commit: 'unknown', portabilityModified: [] };
  }
}

const MIN_BYTES = 2 ** 30;
const COMPANIES = 100_000;
const CONTACTS = 500_000;
const NOTES_PER_BATCH = 300_000;
const MAX_NOTE_BATCHES = 12;
const TARGET_RATIO = 0.8;


interface Sampled<T> {
  value: T;
  ms: number;
  nodeRssBefore: number;
  /** Peak of process.memoryUsage().rss sampled every 100 ms (bytes). */
  nodePeakRss: number;
  nodePeakHeap: number;
  nodePeakExternal: number;
  samples: number;
  /** RSS at each whole second of the run (MiB), to show whether it grows with the data. */
  rssTimeline: number[];
}

/** Times `fn`, sampling Node's memory every 100 ms. */
async function sampled<T>(fn: () => Promise<T>): Promise<Sampled<T>> {
  const nodeRssBefore = process.memoryUsage().rss;
  let nodePeakRss = nodeRssBefore;
  let nodePeakHeap = 0;
  let nodePeakExternal = 0;
  let samples = 0;
  const rssTimeline: number[] = [];
  const t = performance.now();
  const timer = setInterval(() => {
    samples++;
    const m = process.memoryUsage();
    nodePeakRss = Math.max(nodePeakRss, m.rss);
    nodePeakHeap = Math.max(nodePeakHeap, m.heapUsed);
    nodePeakExternal = Math.max(nodePeakExternal, m.external);
    if (performance.now() - t >= rssTimeline.length * 1000) rssTimeline.push(Math.round((m.rss / MB) * 10) / 10);
  }, 100);
  try {
    const value = await fn();
    const ms = performance.now() - t;
    return { value, ms, nodeRssBefore, nodePeakRss: Math.max(nodePeakRss, process.memoryUsage().rss), nodePeakHeap, nodePeakExternal, samples, rssTimeline };
  } finally {
    clearInterval(timer);
  }
}

/** A COPY … TO STDOUT whose data messages are counted and dropped as they arrive. */
class CountingCopy extends pg.Query {
  bytes = 0;
  handleCopyData(msg: { chunk: Buffer }): void {
    this.bytes += msg.chunk.length;
  }
}

async function copyOut(client: pg.Client, sqlText: string): Promise<number> {
  const q = new CountingCopy(sqlText);
  await new Promise<void>((resolve, reject) => {
    q.on('end', () => resolve());
    q.on('error', reject);
    void client.query(q as unknown as pg.QueryConfig);
  });
  return q.bytes;
}


/** As the export's `build` opens its snapshot. */
async function exportSnapshot(client: pg.ClientBase): Promise<void> {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  await client.query(`SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'iso_8601'`);
}

interface CsvRun {
  rows: number;
  /** CSV bytes produced (uncompressed). */
  csvBytes: number;
  /** Zip bytes written ((a2) only). */
  zipBytes: number | null;
  countRowsMs: number;
  tables: number;
}

export function run(log: (line: string) => void): Promise<BenchResult> {
  return exportBench(log);
}

/** The benchmark; `scale` < 1 shrinks the data (a quick check of the benchmark itself, not a result). */
export async function exportBench(log: (line: string) => void, scale = 1): Promise<BenchResult> {
  const MIN = MIN_BYTES * scale;
  const nCompanies = Math.round(COMPANIES * scale);
  const nContacts = Math.round(CONTACTS * scale);
  const nNotes = Math.round(NOTES_PER_BATCH * scale);
  const source = sourceState();
  const csvPath = OWN_CSV_PATH ? 'export-writer.ts tableCsv (a1) / addCsvEntry (a2): COPY (SELECT …) TO STDOUT through pg-copy-streams' : 'reproduction of the export\'s cursor + csvLine path of commit 2807c1d (export-writer.ts has no CSV entry point there)';
  log(`CSV path measured in (a1)/(a2): ${csvPath}; source ${source.commit}${source.portabilityModified.length ? `, portability files modified: ${source.portabilityModified.join(', ')}` : ''}`);
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const loads: Record<string, number[]> = {};
  const noteLoad = (phase: string) => (loads[phase] = os.loadavg().map((l) => Math.round(l * 100) / 100));
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 0 } }, log });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'havre-bench-export-'));
  try {
    const { modules } = havre;
    // 1. ≥ 1 GiB of records, as the tenant role, in a few big statements (workspace-fill.ts).
    const { tenant, admin, fillMs } = await filledBenchTenant(havre, 'Bench export', { companies: nCompanies, contacts: nContacts, notesPerBatch: nNotes, maxNoteBatches: MAX_NOTE_BATCHES, minBytes: MIN }, log);
    const size = async () => Number((await admin.query<{ s: string }>('SELECT pg_database_size(current_database())::text AS s')).rows[0]!.s);
    const dbBytes = await size();
    const tableSizes = (
      await admin.query<{ name: string; rows: string; bytes: string; heap: string }>(
        `SELECT c.relname AS name, c.reltuples::bigint::text AS rows, pg_total_relation_size(c.oid)::text AS bytes, pg_table_size(c.oid)::text AS heap FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY pg_total_relation_size(c.oid) DESC`,
      )
    ).rows.map((r) => ({ name: r.name, rows: Math.max(0, Number(r.rows)), mib: Math.round(Number(r.bytes) / MB), heapMib: Math.round(Number(r.heap) / MB) }));
    await admin.end();
    log(`database ${(dbBytes / MB).toFixed(0)} MiB after ${(fillMs / 1000).toFixed(0)} s`);
    if (dbBytes < MIN) throw new Error(`the database is only ${dbBytes} bytes`);

    // The tables the export exports (from the catalog, as the export reads them).
    const exported = await modules.fleet.connections.withTenantAsAdmin(tenant.databaseId, async (client) => {
      await exportSnapshot(client);
      try {
        const tables = await describeTables(client);
        const counts = await countRows(client, tables);
        return tables.map((t) => ({ name: t.name, rows: counts.get(t.name) ?? 0 }));
      } finally {
        await client.query('ROLLBACK');
      }
    });
    const totalRows = exported.reduce((a, t) => a + t.rows, 0);
    const exportedHeapBytes = tableSizes.filter((t) => exported.some((e) => e.name === t.name)).reduce((a, t) => a + t.heapMib, 0);
    log(`exported tables: ${exported.map((t) => `${t.name} ${t.rows}`).join(', ')}`);

    // 2. The runs.
    const target = await modules.fleet.connections.target(tenant.databaseId);
    const raw = async (label: string) => {
      log(`raw COPY … TO STDOUT (FORMAT csv, HEADER) of every exported table (${label})`);
      noteLoad(`raw${label}`);
      return sampled(async () => {
        const client = new pg.Client(target);
        await client.connect();
        try {
          await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
          let bytes = 0;
          for (const t of exported) bytes += await copyOut(client, `COPY ${ident(t.name)} TO STDOUT (FORMAT csv, HEADER)`);
          await client.query('COMMIT');
          return { bytes, user: (await client.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u };
        } finally {
          await client.end();
        }
      });
    };

    /** (a1)/(a2): the export's CSV path for every table, in the export's snapshot. */
    const havreCsv = (mode: 'discard' | 'zip' | 'stored' | 'zlib') =>
      sampled(() =>
        modules.fleet.connections.withTenantAsAdmin(tenant.databaseId, async (client): Promise<CsvRun> => {
          await exportSnapshot(client);
          try {
            const tables = await describeTables(client);
            const c0 = performance.now();
            const counts = await countRows(client, tables);
            const countRowsMs = performance.now() - c0;
            const rows = { n: 0 };
            let csvBytes = 0;
            let zipBytes: number | null = null;
            if (mode === 'discard') {
              for (const table of tables) {
                for await (const buf of tableCsv(client, table, (n) => void (rows.n += n))) csvBytes += buf.length;
              }
            } else {
              const file = path.join(tmp, 'csv-part.zip');
              // 'zlib': the export's entries as a machine without igzip deflates them (worker threads).
              const zip = new ZipWriter(mode === 'zlib' ? { deflater: 'zlib' } : {});
              const whole = hashing();
              const written = pipeline(zip.output, whole.stream, createWriteStream(file, { flags: 'wx' }));
              for (const table of tables) {
                // 'stored': the same entries not deflated (level 0), for the compression choice.
                const fact = await addCsvEntry(zip, client, table, new Date(), counts.get(table.name) ?? null, undefined, ...(mode === 'stored' ? [0] : []));
                rows.n += fact.rows;
                csvBytes += fact.size;
              }
              await zip.finish();
              await written;
              const handle = await open(file, 'r+');
              await handle.sync().finally(() => handle.close());
              zipBytes = whole.fact().size;
              await rm(file);
            }
            return { rows: rows.n, csvBytes, zipBytes, countRowsMs, tables: tables.length };
          } finally {
            await client.query('ROLLBACK');
          }
        }),
      );

    log('raw warm-up (cache; not in any ratio)');
    const warm = await raw('WarmUp');
    const raw1 = await raw('1');
    log('(a1) Havre CSV path, bytes discarded');
    noteLoad('havreCsvDiscard');
    const a1 = await havreCsv('discard');
    const raw2 = await raw('2');
    log('(a2) Havre CSV part of the archive: zip entries, hashed, written, fsynced');
    noteLoad('havreCsvZip');
    const a2 = await havreCsv('zip');
    const raw3 = await raw('3');
    log('(b) the complete archive: portability.exports.start → done');
    noteLoad('havreArchive');
    const phases: { phase: string; atMs: number }[] = [];
    const tArchive = performance.now();
    const b = await sampled(async () => {
      const { done } = await modules.portability.exports.start(tenant.id, {
        requestedBy: null,
        locale: 'fr',
        actor: { type: 'cli' },
        onProgress: (pr) => {
          if (phases.at(-1)?.phase !== pr.phase) {
            phases.push({ phase: pr.phase, atMs: Math.round(performance.now() - tArchive) });
            log(`archive phase ${pr.phase} at ${((performance.now() - tArchive) / 1000).toFixed(0)} s`);
          }
        },
      });
      return done;
    });
    const row = b.value;
    if (row.state !== 'complete') throw new Error(`export ${row.state}: ${row.error}`);
    const archiveFile = modules.portability.exports.archivePath(row);
    const archiveBytes = (await stat(archiveFile)).size;
    await rm(archiveFile);
    const raw4 = await raw('4');
    let a2s: Awaited<ReturnType<typeof havreCsv>> | null = null;
    let raw5: Awaited<ReturnType<typeof raw>> | null = null;
    let a2z: Awaited<ReturnType<typeof havreCsv>> | null = null;
    let raw6: Awaited<ReturnType<typeof raw>> | null = null;
    if (OWN_CSV_PATH) {
      log('(a2s) the CSV part of the archive with the CSV entries stored (not deflated), for the compression choice');
      noteLoad('havreCsvStored');
      a2s = await havreCsv('stored');
      raw5 = await raw('5');
      log('(a2z) the CSV part of the archive deflated by zlib on worker threads (what a machine without igzip does)');
      noteLoad('havreCsvZlib');
      a2z = await havreCsv('zlib');
      raw6 = await raw('6');
    }
    noteLoad('end');

    for (const r of [warm, raw1, raw2, raw3, raw4]) if (r.value.user !== tenant.roleName) throw new Error(`raw COPY ran as ${r.value.user}`);
    if (a1.value.rows !== totalRows || a2.value.rows !== totalRows) throw new Error(`the CSV path read ${a1.value.rows}/${a2.value.rows} rows, expected ${totalRows}`);

    // 3. Figures.
    const r1 = (v: number) => Math.round(v * 10) / 10;
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    const s = (ms: number) => r1(ms / 1000);
    const rowsPerS = (ms: number) => Math.round(totalRows / (ms / 1000));
    const mibPerS = (bytes: number, ms: number) => r1(bytes / MB / (ms / 1000));
    const mem = (x: Sampled<unknown>) => ({ nodeRssBeforeMiB: r1(x.nodeRssBefore / MB), nodePeakRssMiB: r1(x.nodePeakRss / MB), nodeRssGrowthMiB: r1((x.nodePeakRss - x.nodeRssBefore) / MB), nodePeakHeapUsedMiB: r1(x.nodePeakHeap / MB), nodePeakExternalMiB: r1(x.nodePeakExternal / MB), samples: x.samples, rssTimelineMiB: x.rssTimeline });
    const rawRun = (x: Sampled<{ bytes: number }>) => ({ ms: Math.round(x.ms), rowsPerSecond: rowsPerS(x.ms), csvMiBPerSecond: mibPerS(x.value.bytes, x.ms), csvBytes: x.value.bytes, ...mem(x) });
    const rawCsvBytes = raw1.value.bytes;
    const mean = (a: number, c: number) => (a + c) / 2;
    const ratio = (havreMs: number, before: number, after: number) => ({ overMean: r3(mean(before, after) / havreMs), overFaster: r3(Math.min(before, after) / havreMs) });
    const ratios = {
      a1_csvDiscard: ratio(a1.ms, raw1.ms, raw2.ms),
      a2_csvZip: ratio(a2.ms, raw2.ms, raw3.ms),
      b_completeArchive: ratio(b.ms, raw3.ms, raw4.ms),
      ...(a2s && raw5 ? { a2s_csvStored: ratio(a2s.ms, raw4.ms, raw5.ms) } : {}),
      ...(a2z && raw5 && raw6 ? { a2z_csvZlib: ratio(a2z.ms, raw5.ms, raw6.ms) } : {}),
    };
    const json = {
      date: new Date().toISOString(),
      source,
      csvPath,
      machine: machine(),
      database: { bytes: dbBytes, mib: r1(dbBytes / MB), fillSeconds: s(fillMs), tables: tableSizes, exportedTables: exported, exportedRows: totalRows, exportedHeapMiB: exportedHeapBytes },
      raw: { warmUp: rawRun(warm), run1: rawRun(raw1), run2: rawRun(raw2), run3: rawRun(raw3), run4: rawRun(raw4) },
      havre: {
        a1_csvDiscard: { ms: Math.round(a1.ms), rowsPerSecond: rowsPerS(a1.ms), csvBytes: a1.value.csvBytes, csvMiBPerSecond: mibPerS(a1.value.csvBytes, a1.ms), countRowsMs: Math.round(a1.value.countRowsMs), ...mem(a1) },
        ...(a2s ? { a2s_csvStored: { ms: Math.round(a2s.ms), rowsPerSecond: rowsPerS(a2s.ms), csvBytes: a2s.value.csvBytes, zipBytes: a2s.value.zipBytes, csvMiBPerSecond: mibPerS(a2s.value.csvBytes, a2s.ms), ...mem(a2s) } } : {}),
        ...(a2z ? { a2z_csvZlib: { ms: Math.round(a2z.ms), rowsPerSecond: rowsPerS(a2z.ms), csvBytes: a2z.value.csvBytes, zipBytes: a2z.value.zipBytes, csvMiBPerSecond: mibPerS(a2z.value.csvBytes, a2z.ms), ...mem(a2z) } } : {}),
        a2_csvZip: { ms: Math.round(a2.ms), rowsPerSecond: rowsPerS(a2.ms), csvBytes: a2.value.csvBytes, zipBytes: a2.value.zipBytes, csvMiBPerSecond: mibPerS(a2.value.csvBytes, a2.ms), countRowsMs: Math.round(a2.value.countRowsMs), ...mem(a2) },
        b_completeArchive: { ms: Math.round(b.ms), rowsPerSecond: rowsPerS(b.ms), archiveBytes, archiveMiBPerSecond: mibPerS(archiveBytes, b.ms), rowsWrittenAllFormats: Number(row.rows_written), phases, ...mem(b) },
      },
      ratios,
      targets: { judgedOn: 'a2_csvZip, mean of its two bracketing raw runs', ratioAtLeast: TARGET_RATIO, a2Met: ratios.a2_csvZip.overMean >= TARGET_RATIO, a1Met: ratios.a1_csvDiscard.overMean >= TARGET_RATIO, bMet: ratios.b_completeArchive.overMean >= TARGET_RATIO },
      loadAverage: { atStart: loadAtStart, beforePhase: loads },
    };
    const met = (v: boolean) => (v ? 'met' : 'NOT met');
    const tenthsRange = (t: number[]) =>
      Array.from({ length: Math.min(10, t.length) }, (_, i) => {
        const part = t.slice(Math.floor((i * t.length) / Math.min(10, t.length)), Math.floor(((i + 1) * t.length) / Math.min(10, t.length)));
        return `${Math.min(...part)}–${Math.max(...part)}`;
      }).join(', ');
    const rawRow = (label: string, x: Sampled<{ bytes: number }>) => `| ${label} | ${s(x.ms)} | ${rowsPerS(x.ms).toLocaleString('en')} | ${mibPerS(x.value.bytes, x.ms)} (${r1(x.value.bytes / MB)} MiB CSV) | ${r1(x.nodeRssBefore / MB)} | ${r1(x.nodePeakRss / MB)} | ${r1((x.nodePeakRss - x.nodeRssBefore) / MB)} |`;
    const havreRow = (label: string, x: Sampled<unknown>, bytes: number, note: string) => `| ${label} | **${s(x.ms)}** | **${rowsPerS(x.ms).toLocaleString('en')}** | ${mibPerS(bytes, x.ms)} (${note}) | ${r1(x.nodeRssBefore / MB)} | ${r1(x.nodePeakRss / MB)} | ${r1((x.nodePeakRss - x.nodeRssBefore) / MB)} |`;
    const markdown = [
      '# Export benchmark',
      '',
      `${json.date} — source ${source.commit}${source.portabilityModified.length ? ` **with uncommitted changes to ${source.portabilityModified.join(', ')}**` : ' (portability module as committed)'}; ${json.machine.cpus} × ${json.machine.cpuModel}, ${json.machine.memoryGb} GB, Node ${json.machine.node}; embedded PostgreSQL 15, default (durable) settings, same machine; control plane on its own instance.`,
      `One tenant created through \`tenants.service.create\`; its workspace database filled (as the tenant role, as backup.bench.ts does) to **${r1(dbBytes / MB)} MiB** (\`pg_database_size\`, indexes included) in ${s(fillMs)} s: ${tableSizes.filter((t) => t.rows > 0).map((t) => `${t.name} ${t.rows.toLocaleString('en')} rows / ${t.mib} MiB (heap ${t.heapMib} MiB)`).join(', ')}. Exported (the tables \`describeTables\` returns; bookkeeping tables excluded, as the export does): ${exported.length} tables, **${totalRows.toLocaleString('en')} rows**, ${r1(rawCsvBytes / MB)} MiB as COPY CSV.`,
      '',
      '## Runs (in order)',
      '',
      'Rows/s = exported rows / wall time. MiB/s = the run\'s own output / wall time (COPY\'s CSV bytes; Havre\'s CSV bytes before compression; for (b) the archive file). RSS = `process.memoryUsage().rss` every 100 ms, "before" read just before the run.',
      '',
      '| run | s | rows/s | MiB/s | RSS before MiB | peak RSS MiB | growth MiB |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      rawRow('raw COPY, warm-up (not in any ratio)', warm),
      rawRow('raw COPY 1', raw1),
      havreRow('**(a1) Havre CSV path, bytes discarded**', a1, a1.value.csvBytes, `${r1(a1.value.csvBytes / MB)} MiB CSV`),
      rawRow('raw COPY 2', raw2),
      havreRow('**(a2) Havre CSV part of the archive** (zip entries, SHA-256, deflate, written + fsync)', a2, a2.value.csvBytes, `${r1(a2.value.csvBytes / MB)} MiB CSV → ${r1((a2.value.zipBytes ?? 0) / MB)} MiB zip`),
      rawRow('raw COPY 3', raw3),
      havreRow('**(b) complete archive** (`exports.start` → `done`: CSV + JSONL + XML + XLSX + README + manifest, fsync, rename)', b, archiveBytes, `${r1(archiveBytes / MB)} MiB archive`),
      rawRow('raw COPY 4', raw4),
      ...(a2s && raw5 ? [havreRow('(a2s) CSV part of the archive, CSV entries **stored** (compression choice only)', a2s, a2s.value.csvBytes, `${r1(a2s.value.csvBytes / MB)} MiB CSV → ${r1((a2s.value.zipBytes ?? 0) / MB)} MiB zip`), rawRow('raw COPY 5', raw5)] : []),
      ...(a2z && raw6 ? [havreRow('(a2z) CSV part of the archive, deflated by **zlib** on worker threads (a machine without igzip)', a2z, a2z.value.csvBytes, `${r1(a2z.value.csvBytes / MB)} MiB CSV → ${r1((a2z.value.zipBytes ?? 0) / MB)} MiB zip`), rawRow('raw COPY 6', raw6)] : []),
      '',
      '## Ratios (raw time / Havre time, i.e. Havre throughput / raw throughput on the same rows)',
      '',
      '| Havre run | × mean of bracketing raw runs | × faster raw run | target ≥ 0.8 |',
      '| --- | --- | --- | --- |',
      `| (a1) CSV path, discarded (raw 1 & 2) | ${ratios.a1_csvDiscard.overMean} | ${ratios.a1_csvDiscard.overFaster} | ${met(json.targets.a1Met)} |`,
      `| **(a2) CSV part of the archive (raw 2 & 3) — the target is judged on this** | **${ratios.a2_csvZip.overMean}** | ${ratios.a2_csvZip.overFaster} | **${met(json.targets.a2Met)}** |`,
      `| (b) complete archive, all four formats (raw 3 & 4) | ${ratios.b_completeArchive.overMean} | ${ratios.b_completeArchive.overFaster} | ${met(json.targets.bMet)} |`,
      ...('a2s_csvStored' in ratios && ratios.a2s_csvStored ? [`| (a2s) CSV part of the archive, entries stored — not the export's setting (raw 4 & 5) | ${ratios.a2s_csvStored.overMean} | ${ratios.a2s_csvStored.overFaster} | — |`] : []),
      ...('a2z_csvZlib' in ratios && ratios.a2z_csvZlib ? [`| (a2z) CSV part of the archive, zlib instead of igzip — the fallback (raw 5 & 6) | ${ratios.a2z_csvZlib.overMean} | ${ratios.a2z_csvZlib.overFaster} | — |`] : []),
      '',
      `**Why (a2)**: the issue compares a "full CSV export" with raw COPY. Havre has no CSV-only export: \`exports.start\` always writes the four formats into one zip, so (b) does about four times the work of COPY (each table is read four times, once per format, plus one \`count(*)\` of each). (a2) is the export's own code path for its CSV files, in the export's snapshot with its settings, \`describeTables\` and \`countRows\`: ${OWN_CSV_PATH ? "export-writer.ts's `addCsvEntry` for every table (COPY of the export's SELECT through pg-copy-streams, LF → CRLF, SHA-256, a zip entry deflated at level 1 by ISA-L's `igzip` in a child process (src/lib/zip/igzip-deflate.ts, through zip-writer.ts; " + (igzipAvailable() ? 'installed here' : 'NOT installed here: zlib blocks on worker threads instead') + "), the zip hashed, written and fsynced. (a1) is its `tableCsv` with the bytes counted and discarded, the same as the raw side does with COPY's bytes." : "the `readRows` cursor (FETCH 2000, to_char for timestamps), `csvLine`, 64 KiB batches, a SHA-256 per entry, a deflated yazl entry (yazl's default level), the zip hashed, written and fsynced — reproduced in the bench because export-writer.ts has no CSV-only entry point at this commit (its `batched` and `hashing` helpers are copied verbatim). (a1) leaves out the zip, hashing and disk: only reading and formatting, the same as the raw side which discards COPY's bytes."} (b) is what a customer actually waits for.`,
      '',
      "**Two choices behind these figures** (earlier runs, same bench, in git history): (1) timestamps are written as PostgreSQL writes them in UTC (`2024-02-29 22:59:59.5+00`); rewriting them to `2024-02-29T22:59:59.5Z` with three `replace()` per value cost the database server ~1 s per GB — the whole gap between (a1) and raw COPY (0.821 then); (2) level-1 entries are deflated by ISA-L's `igzip` (a child process per entry) rather than zlib on worker threads: (a2z) shows the zlib figure, which a machine without igzip gets.",
      '',
      `\`countRows\` (a \`count(*)\` of every table, done by the export before writing) took ${s(a1.value.countRowsMs)} s in (a1) and ${s(a2.value.countRowsMs)} s in (a2); it is included in their times.`,
      '',
      `Complete archive phases (s from start): ${phases.map((ph) => `${ph.phase} ${s(ph.atMs)}`).join(', ')}; total ${s(b.ms)} s, ${r1(archiveBytes / MB)} MiB zip, ${Number(row.rows_written).toLocaleString('en')} rows written over four formats.`,
      '',
      '## Memory',
      '',
      `Peak RSS of the bench process during each run, against the RSS just before it: raw ${[raw1, raw2, raw3, raw4].map((x) => `+${r1((x.nodePeakRss - x.nodeRssBefore) / MB)}`).join(', ')} MiB; (a1) +${r1((a1.nodePeakRss - a1.nodeRssBefore) / MB)} MiB (peak heapUsed ${r1(a1.nodePeakHeap / MB)} MiB); (a2) +${r1((a2.nodePeakRss - a2.nodeRssBefore) / MB)} MiB (peak heapUsed ${r1(a2.nodePeakHeap / MB)}, external ${r1(a2.nodePeakExternal / MB)} MiB); (b) +${r1((b.nodePeakRss - b.nodeRssBefore) / MB)} MiB (peak heapUsed ${r1(b.nodePeakHeap / MB)}, external ${r1(b.nodePeakExternal / MB)} MiB) while ${r1(archiveBytes / MB)} MiB of archive (and ~${r1((4 * rawCsvBytes) / MB)} MiB of text before compression) went through. RSS during (b), min–max per tenth of the run (sampled once a second), MiB: ${tenthsRange(b.rssTimeline)}; during (a2): ${tenthsRange(a2.rssTimeline)}; during (a1): ${tenthsRange(a1.rssTimeline)}. The bench process's absolute RSS is not the pipeline's own: it holds the bench's state, and V8 keeps the heap it grew to in an earlier run (see the "before" column).`,
      '',
      '## What each side does',
      '',
      '- **raw**: one `pg` connection logged in as the tenant role (`fleet.connections.target`), `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY`, then `COPY <table> TO STDOUT (FORMAT csv, HEADER)` of each exported table; the CopyData messages are counted and dropped as `pg` parses them (a `pg.Query` subclass), so the bytes do go through Node.',
      '- **Havre (a1, a2)**: `fleet.connections.withTenantAsAdmin` (admin connection, `SET ROLE` to the tenant role, as the export), the export\'s snapshot and `SET LOCAL`s, then as described above.',
      '- **Havre (b)**: `portability.exports.start(tenantId, …)` and its `done` promise (the path of `POST /api/v1/tenants/{id}/exports` and `havre export`): claims the export row, builds `<home>/exports/<tenant>/<id>.zip.partial` (README, every table as CSV, JSON Lines and XML, then the XLSX workbook with one sheet per table, attachments (none here), manifest), fsyncs, renames, marks complete, audits. The archive is deleted after it is measured.',
      '',
      `Load average (1, 5, 15 min) at the start ${loadAtStart.join(', ')}; 1-min load before each phase: ${Object.entries(loads).map(([k, l]) => `${k} ${l[0]}`).join(', ')}. ${json.machine.cpus} cores shared with other people's test runs; the spread between the raw runs shows how much the load moved.`,
      '',
    ].join('\n');
    return { name: 'export', json, markdown };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await havre.close();
  }
}
