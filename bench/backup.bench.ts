/**
 * Backup benchmark (BKP-1, BKP-4): one tenant whose workspace database holds at least 1 GiB of
 * records, backed up through `backups.service.take` (snapshot, per-table row counts and checksums,
 * pg_dump -Fc --compress=0 piped into igzip at `backups.compression` (format havre-backup/2; where
 * igzip is missing, pg_dump -Fc at that level, /1), AES-256-GCM, written to both locations at once,
 * every copy read back and hashed) against raw `pg_dump -Fc -Z1 --no-privileges > /dev/null` of the same
 * database in the same run (raw runs bracket each Havre run, showing drift in the load). The take runs
 * twice: in the bench process (the path rollouts and the schedule use), and as an operator runs it,
 * `havre backup run --tenant <id>` in its own process (the CLI, reaching the same databases through
 * HAVRE_HOME, HAVRE_DATABASE_URL and HAVRE_MASTER_KEY), its VmHWM/VmRSS sampled from /proc every
 * 50 ms; `havre backup list --tenant <id>` once before it gives the peak of an idle CLI process.
 * Targets: Havre ≥ 0.9 × raw throughput (judged against the mean of the two bracketing raw runs;
 * the ratio to the faster one is reported too), peak RSS ≤ 150 MB (judged on the dedicated CLI
 * process's VmHWM).
 *
 * Verification (`backups.service.verify`: scratch database, decrypt, pg_restore, row counts and
 * checksums compared with the manifest, files part read) against raw `pg_restore` of a raw dump
 * of the same database into a fresh database. Target: ≤ 1.2 × raw (mean of the bracketing raw runs).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { filledBenchTenant, MB } from './workspace-fill.ts';
import { partKey } from '../src/modules/backups/backup-writer.ts';
import { pgEnvironment, tableFacts } from '../src/modules/backups/pg-process.ts';
import { machine, startBenchHavre, type BenchResult } from './bench-kit.ts';

const MIN_BYTES = 2 ** 30;
const COMPANIES = 100_000;
const CONTACTS = 500_000;
const NOTES_PER_BATCH = 300_000;
const MAX_NOTE_BATCHES = 12;


/** Child processes of `parent` (all its threads), from /proc. */
async function childPids(parent = process.pid): Promise<number[]> {
  const pids: number[] = [];
  try {
    for (const tid of await readdir(`/proc/${parent}/task`)) {
      const text = await readFile(`/proc/${parent}/task/${tid}/children`, 'utf8').catch(() => '');
      for (const p of text.trim().split(/\s+/)) if (p) pids.push(Number(p));
    }
  } catch {
    /* not Linux */
  }
  return pids;
}

/** VmHWM (peak resident set) of `pid` in bytes when its command is `comm`, else null. */
async function peakOf(pid: number, comm: string): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    if (!new RegExp(`^Name:\\s+${comm}$`, 'm').test(status)) return null;
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

interface Sampled<T> {
  value: T;
  ms: number;
  /** Peak of process.memoryUsage().rss sampled every 100 ms (bytes). */
  nodePeakRss: number;
  nodeRssBefore: number;
  /** Peaks of heapUsed and external (incl. array buffers) at the samples (bytes). */
  nodePeakHeap: number;
  nodePeakExternal: number;
  samples: number;
  /** Largest VmHWM seen of a child process named `childName` (bytes), null if none was seen. */
  childPeakRss: number | null;
}

/** Times `fn`, sampling Node's RSS and the peak RSS of `childName` children every 100 ms. */
async function sampled<T>(childName: string, fn: () => Promise<T>): Promise<Sampled<T>> {
  const nodeRssBefore = process.memoryUsage().rss;
  let nodePeakRss = nodeRssBefore;
  let nodePeakHeap = 0;
  let nodePeakExternal = 0;
  let childPeakRss: number | null = null;
  let samples = 0;
  let sampling = false;
  const sample = async () => {
    if (sampling) return;
    sampling = true;
    try {
      samples++;
      const m = process.memoryUsage();
      nodePeakRss = Math.max(nodePeakRss, m.rss);
      nodePeakHeap = Math.max(nodePeakHeap, m.heapUsed);
      nodePeakExternal = Math.max(nodePeakExternal, m.external);
      for (const pid of await childPids()) {
        const peak = await peakOf(pid, childName);
        if (peak !== null) childPeakRss = Math.max(childPeakRss ?? 0, peak);
      }
    } finally {
      sampling = false;
    }
  };
  const timer = setInterval(() => void sample(), 100);
  const t = performance.now();
  try {
    const value = await fn();
    const ms = performance.now() - t;
    return { value, ms, nodePeakRss: Math.max(nodePeakRss, process.memoryUsage().rss), nodeRssBefore, nodePeakHeap, nodePeakExternal, samples, childPeakRss };
  } finally {
    clearInterval(timer);
  }
}

/** Runs a libpq tool with PG* env of `target`, stdout to `outFile` (or /dev/null). */
async function runTool(tool: 'pg_dump' | 'pg_restore', args: string[], target: pg.ClientConfig, outFile = '/dev/null'): Promise<void> {
  const out = await open(outFile, 'w');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(tool, args, { env: pgEnvironment(target), stdio: ['ignore', out.fd, 'pipe'] });
      let stderr = '';
      child.stderr!.setEncoding('utf8').on('data', (s: string) => (stderr += s.slice(0, 2000)));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${tool} exit ${code}: ${stderr.slice(0, 800)}`))));
    });
  } finally {
    await out.close();
  }
}

const RAW_DUMP_ARGS = ['-Fc', '-Z1', '--no-privileges'];

/** VmRSS and VmHWM of `pid` (bytes), null once it has exited (a zombie has neither). */
async function memOf(pid: number): Promise<{ rss: number; hwm: number } | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status);
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(status);
    return rss && hwm ? { rss: Number(rss[1]) * 1024, hwm: Number(hwm[1]) * 1024 } : null;
  } catch {
    return null;
  }
}

interface MemPoint {
  atMs: number;
  rss: number;
  hwm: number;
}

interface CliRun {
  ms: number;
  stdout: string;
  /** Samples of /proc/<pid>/status taken (every 50 ms until the process exited). */
  samples: number;
  /** Largest VmHWM read: the process's peak resident set (bytes). */
  peakHwm: number;
  first: MemPoint | null;
  /** The last sample before a pg_dump child of the CLI was first seen (start-up, lease, snapshot). */
  beforeDump: MemPoint | null;
  dumpSeenAtMs: number | null;
  /** Largest VmHWM of its pg_dump child (bytes), null if none was seen. */
  pgDumpPeak: number | null;
  /** Largest VmHWM of its igzip child (format havre-backup/2), bytes. */
  igzipPeak: number | null;
  /** One sample a second: ms since spawn, VmRSS and VmHWM in MiB. */
  timeline: [number, number, number][];
}

const REPO = path.resolve(import.meta.dirname, '..');
const NODE = path.join(REPO, 'node_modules', 'node', 'bin', 'node');

/**
 * Runs `node src/cli/havre.ts --json <args>` in its own process, as an operator would, with `env`
 * (HAVRE_* for this bench's Havre, the rest of the bench's environment for PATH), sampling its
 * VmRSS/VmHWM (and its pg_dump child's VmHWM) from /proc every 50 ms until it exits.
 */
async function runCli(args: string[], env: Record<string, string>): Promise<CliRun> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HAVRE_'))) as Record<string, string>;
  const t0 = performance.now();
  const child = spawn(NODE, ['src/cli/havre.ts', '--json', ...args], { cwd: REPO, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid!;
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d.slice(0, 4000)));
  let exited = false;
  const done = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      exited = true;
      resolve(code);
    });
  });
  const run: Omit<CliRun, 'ms' | 'stdout'> = { samples: 0, peakHwm: 0, first: null, beforeDump: null, dumpSeenAtMs: null, pgDumpPeak: null, igzipPeak: null, timeline: [] };
  let last: MemPoint | null = null;
  let nextTimeline = 0;
  const sampler = (async () => {
    while (!exited) {
      const atMs = performance.now() - t0;
      const m = await memOf(pid);
      if (m) {
        run.samples++;
        const point = { atMs, ...m };
        run.first ??= point;
        run.peakHwm = Math.max(run.peakHwm, m.hwm);
        if (atMs >= nextTimeline) {
          run.timeline.push([Math.round(atMs), Math.round((m.rss / MB) * 10) / 10, Math.round((m.hwm / MB) * 10) / 10]);
          nextTimeline += 1000;
        }
        for (const c of await childPids(pid)) {
          const gz = await peakOf(c, 'igzip');
          if (gz !== null) run.igzipPeak = Math.max(run.igzipPeak ?? 0, gz);
          const peak = await peakOf(c, 'pg_dump');
          if (peak === null) continue;
          run.pgDumpPeak = Math.max(run.pgDumpPeak ?? 0, peak);
          if (run.dumpSeenAtMs === null) {
            run.dumpSeenAtMs = atMs;
            run.beforeDump = last;
          }
        }
        last = point;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const code = await done;
  const ms = performance.now() - t0;
  await sampler;
  if (code !== 0) throw new Error(`havre ${args.join(' ')} exit ${code}: ${stderr.slice(0, 1500)}`);
  return { ms, stdout, ...run };
}

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const previous = await previousRun();
  const previousLine = previous
    ? `Previous run (${previous.date}${previous.note ? `, ${previous.note}` : ''}): in-process take ${previous.takeS} s (${previous.takeRatio} × raw mean), its Node peak RSS ${previous.takePeakRssMiB} MiB (${previous.takeRssBeforeMiB} before)${previous.cliHwmMiB ? `, CLI process VmHWM ${previous.cliHwmMiB} MiB` : ''}; verify ${previous.verifyS} s (${previous.verifyRatio} × raw pg_restore mean); 1-min load ~${previous.load}.`
    : 'No previous run recorded.';
  const loadAtStart = os.loadavg().map((l) => Math.round(l * 100) / 100);
  const started = performance.now();
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 0 } }, log });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'havre-bench-backup-'));
  const loads: Record<string, number[]> = {};
  const noteLoad = (phase: string) => (loads[phase] = os.loadavg().map((l) => Math.round(l * 100) / 100));
  try {
    const { core, modules } = havre;
    // 1. ≥ 1 GiB of records, as the tenant role, in a few big statements (workspace-fill.ts).
    const { tenant, serverUrl, admin, fillMs, notes } = await filledBenchTenant(havre, 'Bench backup', { companies: COMPANIES, contacts: CONTACTS, notesPerBatch: NOTES_PER_BATCH, maxNoteBatches: MAX_NOTE_BATCHES, minBytes: MIN_BYTES }, log);
    const size = async () => Number((await admin.query<{ s: string }>('SELECT pg_database_size(current_database())::text AS s')).rows[0]!.s);
    const dbBytes = await size();
    const tableSizes = (
      await admin.query<{ name: string; rows: string; bytes: string }>(
        `SELECT c.relname AS name, c.reltuples::bigint::text AS rows, pg_total_relation_size(c.oid)::text AS bytes FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.reltuples > 0 ORDER BY pg_total_relation_size(c.oid) DESC`,
      )
    ).rows.map((r) => ({ name: r.name, rows: Number(r.rows), mib: Math.round(Number(r.bytes) / MB) }));
    await admin.end();
    log(`database ${(dbBytes / MB).toFixed(0)} MiB after ${(fillMs / 1000).toFixed(0)} s`);
    if (dbBytes < MIN_BYTES) throw new Error(`the database is only ${dbBytes} bytes`);

    // 2. Dumps: a raw one to a file (for the restore baseline; also warms the cache), then raw, Havre, raw.
    const target = await modules.fleet.connections.target(tenant.databaseId);
    const dumpFile = path.join(tmp, 'raw.dump');
    log('raw pg_dump to a file (restore baseline; cache warm-up)');
    noteLoad('rawDumpToFile');
    const toFile = await sampled('pg_dump', () => runTool('pg_dump', RAW_DUMP_ARGS, target, dumpFile));
    const dumpBytes = (await stat(dumpFile)).size;
    const rawDump = async (label: string) => {
      log(`raw pg_dump -Fc -Z1 > /dev/null (${label})`);
      noteLoad(`rawDump${label}`);
      return sampled('pg_dump', () => runTool('pg_dump', RAW_DUMP_ARGS, target));
    };
    const rawBefore = await rawDump('Before');
    log('Havre backups.service.take');
    noteLoad('havreTake');
    const take = await sampled('pg_dump', () => modules.backups.service.take(tenant.id, { trigger: 'on_demand', actor: { type: 'cli' } }));
    const backup = take.value;
    if (backup.state !== 'complete') throw new Error(`backup ${backup.state}: ${backup.error}`);
    const rawMiddle = await rawDump('Middle');

    // The same take as an operator runs it: `havre backup run` in its own process, reaching the
    // same control plane, master key and backup locations. `backup list` first: an idle CLI process.
    const cliEnv = { HAVRE_HOME: core.config.home, HAVRE_DATABASE_URL: core.config.databaseUrl!, HAVRE_MASTER_KEY: core.config.masterKey!, HAVRE_LOG_LEVEL: 'warn' };
    log('havre backup list --tenant (idle CLI process)');
    noteLoad('cliList');
    const cliList = await runCli(['backup', 'list', '--tenant', tenant.id], cliEnv);
    log('havre backup run --tenant (its own process)');
    noteLoad('cliTake');
    const cliTake = await runCli(['backup', 'run', '--tenant', tenant.id], cliEnv);
    const cliResult = (JSON.parse(cliTake.stdout) as { backupId: string | null; state: string; seconds: number; sizeBytes: number | null; error: string | null }[])[0]!;
    if (cliResult.state !== 'complete') throw new Error(`CLI backup ${cliResult.state}: ${cliResult.error}`);
    const rawAfter = await rawDump('After');
    const manifest = backup.manifest as { format: string; parts: { database: { size: number; plainSize: number } } };

    // Parts of the take, measured on their own afterwards (not timed in any ratio): the per-table
    // row counts and checksums (as the tenant role, in a snapshot) and hashing both stored copies.
    log('components: table checksums, reading back the stored database copies');
    let c0 = performance.now();
    await modules.fleet.connections.withTenant(tenant.databaseId, async (client) => {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      try {
        await tableFacts(client);
      } finally {
        await client.query('ROLLBACK');
      }
    });
    const checksumsMs = performance.now() - c0;
    const readBackMs: Record<string, number> = {};
    for (const store of modules.backups.stores) {
      c0 = performance.now();
      await store.digest(partKey(tenant.id, backup.id, 'database'));
      readBackMs[store.name] = Math.round(performance.now() - c0);
    }

    // 3. Verification: raw pg_restore (same flags as Havre's) into a fresh database, then Havre's verify.
    const serverAdmin = new pg.Client({ connectionString: serverUrl });
    await serverAdmin.connect();
    const restoreUrl = new URL(serverUrl);
    const rawRestore = async (label: string) => {
      const name = `bench_raw_restore_${label.toLowerCase()}`;
      log(`raw pg_restore into a fresh database (${label})`);
      noteLoad(`rawRestore${label}`);
      let c = performance.now();
      await serverAdmin.query(`CREATE DATABASE ${name} TEMPLATE template0`);
      const createMs = performance.now() - c;
      restoreUrl.pathname = `/${name}`;
      const r = await sampled('pg_restore', () => runTool('pg_restore', ['--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', `--dbname=${name}`, dumpFile], { connectionString: restoreUrl.toString() }));
      c = performance.now();
      await serverAdmin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      return { ...r, createMs, dropMs: performance.now() - c };
    };
    const restoreBefore = await rawRestore('Before');
    log('Havre backups.service.verify');
    noteLoad('havreVerify');
    const verify = await sampled('pg_restore', () => modules.backups.service.verify(backup));
    if (!verify.value.ok) throw new Error(`verification failed: ${verify.value.problems.join('; ')}`);
    // The bracketing second raw restore only when the run is still within its time budget.
    const restoreAfter = performance.now() - started < 25 * 60_000 ? await rawRestore('After') : null;
    await serverAdmin.end();
    noteLoad('end');

    const mbps = (ms: number) => Math.round((dbBytes / MB / (ms / 1000)) * 10) / 10;
    const r1 = (v: number) => Math.round(v * 10) / 10;
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    const mib = (b: number | null) => (b === null ? null : r1(b / MB));
    // Each Havre run against the raw runs on either side of it: the mean (judged) and the faster one.
    const inProcessRawMeanMs = (rawBefore.ms + rawMiddle.ms) / 2;
    const cliRawMeanMs = (rawMiddle.ms + rawAfter.ms) / 2;
    const rawRestoreMeanMs = restoreAfter ? (restoreBefore.ms + restoreAfter.ms) / 2 : restoreBefore.ms;
    const throughputRatio = inProcessRawMeanMs / take.ms;
    const fasterThroughputRatio = Math.min(rawBefore.ms, rawMiddle.ms) / take.ms;
    const cliThroughputRatio = cliRawMeanMs / cliTake.ms;
    const cliFasterThroughputRatio = Math.min(rawMiddle.ms, rawAfter.ms) / cliTake.ms;
    const cliTakeOnlyRatio = cliRawMeanMs / (cliResult.seconds * 1000);
    const verifyRatio = verify.ms / rawRestoreMeanMs;
    const mem = (s: Sampled<unknown>) => ({ nodePeakRssMiB: mib(s.nodePeakRss), nodeRssBeforeMiB: mib(s.nodeRssBefore), nodePeakHeapUsedMiB: mib(s.nodePeakHeap), nodePeakExternalMiB: mib(s.nodePeakExternal), childPeakRssMiB: mib(s.childPeakRss), samples: s.samples });
    const point = (p: MemPoint | null) => p && { atMs: Math.round(p.atMs), vmRssMiB: mib(p.rss), vmHwmMiB: mib(p.hwm) };
    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      loadAverage: { atStart: loadAtStart, beforePhase: loads },
      server: 'embedded PostgreSQL 15, default (durable) settings, same machine; control plane on its own instance; pg_dump/pg_restore ' + (await toolVersion()),
      database: { bytes: dbBytes, mib: Math.round(dbBytes / MB), tables: tableSizes, notesInserted: notes, fillSeconds: Math.round(fillMs / 1000) },
      compression: core.config.backups.compression,
      locations: core.config.backups.locations.map((l) => `${l.name} (${l.driver})`),
      dump: {
        rawToFile: { ms: Math.round(toFile.ms), mibPerS: mbps(toFile.ms), dumpBytes, ...mem(toFile) },
        rawBefore: { ms: Math.round(rawBefore.ms), mibPerS: mbps(rawBefore.ms), ...mem(rawBefore) },
        havreTake: {
          ms: Math.round(take.ms),
          mibPerS: mbps(take.ms),
          state: backup.state,
          databasePartBytes: manifest.parts.database.size,
          databasePartPlainBytes: manifest.parts.database.plainSize,
          storedBytesAllParts: Number(backup.size_bytes),
          ...mem(take),
          nodeRssGrowthMiB: r1((take.nodePeakRss - take.nodeRssBefore) / MB),
        },
        rawMiddle: { ms: Math.round(rawMiddle.ms), mibPerS: mbps(rawMiddle.ms), ...mem(rawMiddle) },
        cliList: { ms: Math.round(cliList.ms), samples: cliList.samples, vmHwmMiB: mib(cliList.peakHwm) },
        cliTake: {
          ms: Math.round(cliTake.ms),
          mibPerS: mbps(cliTake.ms),
          takeSecondsReportedByCli: cliResult.seconds,
          takeOnlyMibPerS: mbps(cliResult.seconds * 1000),
          state: cliResult.state,
          backupId: cliResult.backupId,
          samples: cliTake.samples,
          vmHwmMiB: mib(cliTake.peakHwm),
          growthOverIdleCliMiB: r1((cliTake.peakHwm - cliList.peakHwm) / MB),
          firstSample: point(cliTake.first),
          lastSampleBeforePgDump: point(cliTake.beforeDump),
          pgDumpFirstSeenAtMs: cliTake.dumpSeenAtMs === null ? null : Math.round(cliTake.dumpSeenAtMs),
          pgDumpPeakRssMiB: mib(cliTake.pgDumpPeak),
          igzipPeakRssMiB: mib(cliTake.igzipPeak),
          timeline_ms_vmRssMiB_vmHwmMiB: cliTake.timeline,
        },
        rawAfter: { ms: Math.round(rawAfter.ms), mibPerS: mbps(rawAfter.ms), ...mem(rawAfter) },
        componentsMeasuredApart: { tableChecksumsMs: Math.round(checksumsMs), readBackDatabaseCopyMs: readBackMs },
      },
      verification: {
        rawRestoreBefore: { ms: Math.round(restoreBefore.ms), createDatabaseMs: Math.round(restoreBefore.createMs), dropDatabaseMs: Math.round(restoreBefore.dropMs), ...mem(restoreBefore) },
        havreVerify: { ms: Math.round(verify.ms), ok: verify.value.ok, ...mem(verify) },
        rawRestoreAfter: restoreAfter && { ms: Math.round(restoreAfter.ms), createDatabaseMs: Math.round(restoreAfter.createMs), dropDatabaseMs: Math.round(restoreAfter.dropMs), ...mem(restoreAfter) },
      },
      ratios: {
        havreThroughput_over_rawMeanThroughput: r3(throughputRatio),
        havreThroughput_over_fasterRawThroughput: r3(fasterThroughputRatio),
        cliThroughput_over_rawMeanThroughput: r3(cliThroughputRatio),
        cliThroughput_over_fasterRawThroughput: r3(cliFasterThroughputRatio),
        cliTakeOnlyThroughput_over_rawMeanThroughput: r3(cliTakeOnlyRatio),
        havreVerify_over_rawRestoreMean: r3(verifyRatio),
      },
      targets: {
        judgedOn: 'throughput: mean of the two raw runs bracketing each Havre run; RSS: VmHWM of the dedicated `havre backup run` process; verification: mean of the bracketing raw pg_restore runs',
        throughputAtLeast0_9OfRawMean_inProcess: throughputRatio >= 0.9,
        throughputAtLeast0_9OfRawMean_cli: cliThroughputRatio >= 0.9,
        cliPeakRssAtMost150MB: cliTake.peakHwm <= 150e6,
        verifyAtMost1_2OfRawMean: verifyRatio <= 1.2,
      },
      previousRun: previous,
    };
    const met = (b: boolean) => (b ? 'met' : 'NOT met');
    const s = (ms: number) => (ms / 1000).toFixed(1);
    const d = json.dump;
    const v = json.verification;
    const c = d.cliTake;
    const markdown = [
      '# Backup benchmark',
      '',
      `${json.date} — ${json.machine.cpus} × ${json.machine.cpuModel}, ${json.machine.memoryGb} GB, Node ${json.machine.node}; ${json.server}.`,
      `One tenant created through \`tenants.service.create\`; its workspace database filled (as the tenant role) to **${json.database.mib} MiB** (\`pg_database_size\`, indexes included) in ${json.database.fillSeconds} s: ${tableSizes.map((x) => `${x.name} ${x.rows.toLocaleString('en')} rows / ${x.mib} MiB`).join(', ')}. Note bodies are random French phrases (~400 bytes), so they compress like text. \`backups.compression\` = ${json.compression}; locations: ${json.locations.join(', ')} (both on the same local disk here).`,
      '',
      previousLine,
      '',
      '## Backup vs raw `pg_dump`',
      '',
      '| run (in order) | s | MiB/s (database size / time) | Havre process peak RSS MiB | baseline RSS MiB | growth MiB | pg_dump peak RSS MiB |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      `| raw \`pg_dump -Fc -Z1 --no-privileges\` → file (restore baseline, cache warm-up; ${r1(dumpBytes / MB)} MiB archive) | ${s(d.rawToFile.ms)} | ${d.rawToFile.mibPerS} | — | — | — | ${d.rawToFile.childPeakRssMiB ?? 'n/a'} |`,
      `| raw \`pg_dump -Fc -Z1 --no-privileges > /dev/null\`, 1 | ${s(d.rawBefore.ms)} | ${d.rawBefore.mibPerS} | — | — | — | ${d.rawBefore.childPeakRssMiB ?? 'n/a'} |`,
      `| **Havre \`backups.service.take\`, in the bench process** (state ${backup.state}; RSS = process.memoryUsage().rss every 100 ms, baseline = just before the take) | **${s(d.havreTake.ms)}** | **${d.havreTake.mibPerS}** | ${d.havreTake.nodePeakRssMiB} | ${d.havreTake.nodeRssBeforeMiB} | **${d.havreTake.nodeRssGrowthMiB}** | ${d.havreTake.childPeakRssMiB ?? 'n/a'} |`,
      `| raw \`pg_dump -Fc -Z1 --no-privileges > /dev/null\`, 2 | ${s(d.rawMiddle.ms)} | ${d.rawMiddle.mibPerS} | — | — | — | ${d.rawMiddle.childPeakRssMiB ?? 'n/a'} |`,
      `| \`havre backup list --tenant\` in its own process (idle CLI: config, migrations check, modules built, one query) | ${s(d.cliList.ms)} | — | ${d.cliList.vmHwmMiB} (VmHWM) | — | — | — |`,
      `| **\`havre backup run --tenant\` in its own process** (state ${c.state}; wall time from spawn to exit, start-up included; RSS = VmHWM from /proc every 50 ms, ${c.samples} samples; baseline = the idle CLI's VmHWM above) | **${s(c.ms)}** | **${c.mibPerS}** | **${c.vmHwmMiB}** | ${d.cliList.vmHwmMiB} | ${c.growthOverIdleCliMiB} | ${c.pgDumpPeakRssMiB ?? 'n/a'} |`,
      `| raw \`pg_dump -Fc -Z1 --no-privileges > /dev/null\`, 3 | ${s(d.rawAfter.ms)} | ${d.rawAfter.mibPerS} | — | — | — | ${d.rawAfter.childPeakRssMiB ?? 'n/a'} |`,
      '',
      `Havre's database part (manifest format \`${manifest.format}\`): ${r1(manifest.parts.database.plainSize / MB)} MiB ${manifest.format === 'havre-backup/2' ? 'of gzip (igzip) around the pg_dump archive' : 'of pg_dump archive'}, ${r1(manifest.parts.database.size / MB)} MiB encrypted, written twice; all parts stored: ${r1(Number(backup.size_bytes) / MB)} MiB per location. The CLI reported its take itself (inside the process, start-up excluded) at ${cliResult.seconds.toFixed(1)} s (${c.takeOnlyMibPerS} MiB/s); start-up and shut-down of the process are the rest of its ${s(c.ms)} s.`,
      '',
      `Components, each run again on its own after the runs above (outside any ratio; in the take they overlap: once pg_dump is done, the checksums run on the snapshot's connection while the copies are read back in parallel, so they do not add up): per-table row counts and checksums (\`hash_record_extended\`) ${s(checksumsMs)} s; reading back and hashing the stored database part ${Object.entries(readBackMs).map(([k, ms]) => `${k} ${s(ms)} s`).join(', ')} (just written, so from a warm page cache: a lower bound).`,
      '',
      '**Throughput** (target ≥ 0.9 × raw, judged against the mean of the two raw runs bracketing each Havre run; the ratio to the faster of the two is given as well):',
      '',
      `- in the bench process (\`backups.service.take\`, the path rollouts and the schedule use), between raw runs 1 and 2: **${json.ratios.havreThroughput_over_rawMeanThroughput}** × the mean (${s(inProcessRawMeanMs)} s), ${json.ratios.havreThroughput_over_fasterRawThroughput} × the faster — **${met(json.targets.throughputAtLeast0_9OfRawMean_inProcess)}**${fasterThroughputRatio >= 0.9 !== throughputRatio >= 0.9 ? ` (against the faster run it would be ${met(fasterThroughputRatio >= 0.9)})` : ''}.`,
      `- \`havre backup run\` in its own process, between raw runs 2 and 3: **${json.ratios.cliThroughput_over_rawMeanThroughput}** × the mean (${s(cliRawMeanMs)} s), ${json.ratios.cliThroughput_over_fasterRawThroughput} × the faster — **${met(json.targets.throughputAtLeast0_9OfRawMean_cli)}**${cliFasterThroughputRatio >= 0.9 !== cliThroughputRatio >= 0.9 ? ` (against the faster run it would be ${met(cliFasterThroughputRatio >= 0.9)})` : ''}. On the take time the CLI reports itself (start-up excluded): ${json.ratios.cliTakeOnlyThroughput_over_rawMeanThroughput} × the mean.`,
      '',
      `**Peak RSS** (target ≤ 150 MB = ${r1(150e6 / MB)} MiB, judged on the dedicated \`havre backup run\` process's VmHWM, the kernel's own peak of its resident set): **${c.vmHwmMiB} MiB — ${met(json.targets.cliPeakRssAtMost150MB)}**. An idle CLI process (\`havre backup list\`) peaks at ${d.cliList.vmHwmMiB} MiB, so the backup itself adds ${c.growthOverIdleCliMiB} MiB. In the run, the first sample (${c.firstSample ? `${c.firstSample.atMs} ms after spawn` : 'none'}) read VmRSS ${c.firstSample?.vmRssMiB ?? 'n/a'} MiB; the last sample before its pg_dump child appeared (${c.lastSampleBeforePgDump ? `${c.lastSampleBeforePgDump.atMs} ms` : 'none'}; pg_dump first seen at ${c.pgDumpFirstSeenAtMs ?? 'n/a'} ms) read VmRSS ${c.lastSampleBeforePgDump?.vmRssMiB ?? 'n/a'} MiB, VmHWM ${c.lastSampleBeforePgDump?.vmHwmMiB ?? 'n/a'} MiB (start-up done). pg_dump is a separate process (its own VmHWM in the last column), ${c.igzipPeakRssMiB !== null ? `and so is igzip (VmHWM ${c.igzipPeakRssMiB} MiB)` : 'no igzip child was seen'}, and the PostgreSQL backend serving pg_dump is not counted on either side. In the bench process the take grew RSS by ${d.havreTake.nodeRssGrowthMiB} MiB (${d.havreTake.nodeRssBeforeMiB} → ${d.havreTake.nodePeakRssMiB} MiB; that process had filled the database and holds the bench's own state, so its absolute figure is not the pipeline's; peak heapUsed ${d.havreTake.nodePeakHeapUsedMiB} MiB, peak external/array buffers ${d.havreTake.nodePeakExternalMiB} MiB).`,
      '',
      '## Verification vs raw `pg_restore`',
      '',
      '| run (in order) | s | Node peak RSS MiB | pg_restore peak RSS MiB |',
      '| --- | --- | --- | --- |',
      `| raw \`pg_restore --no-owner --no-privileges --single-transaction --exit-on-error\` of the raw dump file into a fresh database, before (CREATE DATABASE ${v.rawRestoreBefore.createDatabaseMs} ms and DROP ${v.rawRestoreBefore.dropDatabaseMs} ms, not included) | ${s(v.rawRestoreBefore.ms)} | — | ${v.rawRestoreBefore.childPeakRssMiB ?? 'n/a'} |`,
      `| **Havre \`backups.service.verify\`** (ok: ${verify.value.ok}; in the bench process) | **${s(v.havreVerify.ms)}** | ${v.havreVerify.nodePeakRssMiB} | ${v.havreVerify.childPeakRssMiB ?? 'n/a'} |`,
      restoreAfter
        ? `| raw \`pg_restore\`, the same, after (CREATE ${v.rawRestoreAfter!.createDatabaseMs} ms, DROP ${v.rawRestoreAfter!.dropDatabaseMs} ms, not included) | ${s(v.rawRestoreAfter!.ms)} | — | ${v.rawRestoreAfter!.childPeakRssMiB ?? 'n/a'} |`
        : '| raw `pg_restore`, after | skipped (time budget) | | |',
      '',
      `Ratio verify / raw pg_restore (${restoreAfter ? 'mean of the two bracketing' : 'the single'} raw run${restoreAfter ? 's' : ''}, ${s(rawRestoreMeanMs)} s): **${json.ratios.havreVerify_over_rawRestoreMean}**. Target ≤ 1.2: **${met(json.targets.verifyAtMost1_2OfRawMean)}**.`,
      '',
      '## What each side does',
      '',
      '- **raw pg_dump**: `pg_dump -Fc -Z1 --no-privileges` as the tenant role (PG* environment, as pg-process.ts does), its stdout straight to /dev/null (no bytes through Node).',
      "- **Havre take**: claims the backup row (lease), ensures the tenant's data key, opens a REPEATABLE READ snapshot as the tenant role and exports it; runs " + (manifest.format === 'havre-backup/2' ? "`pg_dump -Fc --compress=0 --no-privileges --no-sync --snapshot=…` (under coreutils' `stdbuf --output=1M`) writing straight into ISA-L's `igzip -1` through an OS pipe (no byte through Node; format havre-backup/2), and streams igzip's output through Node:" : "`pg_dump -Fc -Z1 --no-privileges --no-sync --snapshot=…` (under coreutils' `stdbuf --output=1M`, so that it writes 1 MiB at a time) and streams its bytes through Node:") + " AES-256-GCM chunks, SHA-256, written to **two** locations at once (write-once files, flushed to disk as they grow and fsync'd); the files part (tar, empty here) likewise; then, still in the snapshot, every table's row count and `hash_record_extended` checksum (a full scan of every table) while **every copy is read back** from both locations and hashed; the manifest is stored and read back the same way; records copies, the audit entry.",
      '- **`havre backup run --tenant`**: the same take, in a fresh Node process started as an operator starts it (`node src/cli/havre.ts`, HAVRE_HOME / HAVRE_DATABASE_URL / HAVRE_MASTER_KEY of this bench, HAVRE_LOG_LEVEL=warn): loads the configuration, checks migrations, builds the core and modules, takes the backup, closes its pools and exits. Its wall time includes all of that.',
      '- **raw pg_restore**: the raw dump file into a fresh empty database as the server admin, with the flags Havre uses (one transaction, objects owned by the connecting role); creating and dropping that database are timed apart and not included.',
      "- **Havre verify**: creates a scratch database; reads every stored copy back and checks its SHA-256 while it streams the first copy of the database part, decrypting (and, format /2, inflating with zlib), into `pg_restore` (same flags); recomputes every table's row count and checksum in the restored database and compares them with the manifest; reads the files part; drops the scratch database — all of it timed.",
      '',
      `Load average (1, 5, 15 min) at the start ${loadAtStart.join(', ')}; 1-min load before each phase: ${Object.entries(loads).map(([k, l]) => `${k} ${l[0]}`).join(', ')}. ${json.machine.cpus} cores; the spread between the bracketing raw runs shows how much the load moved.`,
      '',
    ].join('\n');
    return { name: 'backup', json, markdown };
  } finally {
    await rm(tmp, { recursive: true, force: true });
    await havre.close();
  }
}

/** The headline figures of the run recorded in bench/results/backup.json, if any. */
async function previousRun(): Promise<{ date: string; note: string | null; takeS: number; takeRatio: number; takePeakRssMiB: number; takeRssBeforeMiB: number; cliHwmMiB: number | null; verifyS: number; verifyRatio: number; load: number | null } | null> {
  try {
    const p = JSON.parse(await readFile(path.join(import.meta.dirname, 'results', 'backup.json'), 'utf8')) as {
      date: string;
      loadAverage?: { beforePhase?: Record<string, number[]> };
      dump: { havreTake: { ms: number; nodePeakRssMiB: number; nodeRssBeforeMiB: number }; cliTake?: { vmHwmMiB: number } };
      verification: { havreVerify: { ms: number } };
      ratios: { havreThroughput_over_rawMeanThroughput: number; havreVerify_over_rawRestoreMean: number };
    };
    const loads = Object.values(p.loadAverage?.beforePhase ?? {}).map((l) => l[0]!);
    return {
      date: p.date,
      note: p.dump.cliTake ? null : 'before the backup code was made faster',
      takeS: Math.round(p.dump.havreTake.ms / 100) / 10,
      takeRatio: p.ratios.havreThroughput_over_rawMeanThroughput,
      takePeakRssMiB: p.dump.havreTake.nodePeakRssMiB,
      takeRssBeforeMiB: p.dump.havreTake.nodeRssBeforeMiB,
      cliHwmMiB: p.dump.cliTake?.vmHwmMiB ?? null,
      verifyS: Math.round(p.verification.havreVerify.ms / 100) / 10,
      verifyRatio: p.ratios.havreVerify_over_rawRestoreMean,
      load: loads.length ? Math.round((loads.reduce((a, b) => a + b, 0) / loads.length) * 10) / 10 : null,
    };
  } catch {
    return null;
  }
}

async function toolVersion(): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('pg_dump', ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('close', () => resolve(out.trim().replace(/^pg_dump \(PostgreSQL\) /, '')));
    child.on('error', () => resolve('unknown'));
  });
}
