/**
 * Shared pieces of the benchmarks: a throw-away Havre (embedded control plane + region servers,
 * migrated, with the real core and modules), timing and percentiles.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createApp, createCore, createModules, type App, type Core, type Modules } from '../src/app.ts';
import { loadConfig, type ConfigInput } from '../src/config/config.ts';
import { createDb, migrateToLatest } from '../src/db/db.ts';
import { freePort, startEmbeddedCluster, type EmbeddedCluster } from '../src/embedded/embedded-postgres.ts';

export interface BenchResult {
  name: string;
  /** Machine-readable figures. */
  json: Record<string, unknown>;
  /** A short human report. */
  markdown: string;
}

export interface BenchHavre {
  core: Core;
  modules: Modules;
  servers: EmbeddedCluster[];
  /** The HTTP app (not listening yet), when asked for with `http: true`; its modules are `modules`. */
  app: App | null;
  close(): Promise<void>;
}

/**
 * Starts a control-plane cluster and `regionServers` database servers (PostgreSQL defaults:
 * durable settings, as in production), migrates, builds the core and modules.
 */
export async function startBenchHavre(options: { regionServers: number; config?: ConfigInput | Record<string, unknown>; log?: (line: string) => void; http?: boolean }): Promise<BenchHavre> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'havre-bench-'));
  await chmod(root, 0o755);
  const password = randomBytes(12).toString('hex');
  const clusters: EmbeddedCluster[] = [];
  try {
    for (const name of ['control', ...Array.from({ length: options.regionServers }, (_, i) => `server${i + 1}`)]) {
      options.log?.(`starting embedded PostgreSQL ${name}`);
      clusters.push(await startEmbeddedCluster({ dataDir: path.join(root, name), port: await freePort(), password, settings: { max_connections: '300' } }));
    }
    const control = clusters[0]!;
    const admin = new pg.Client({ connectionString: control.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE havre');
    await admin.end();
    const db = createDb(control.url('havre'));
    await migrateToLatest(db);
    const config = loadConfig({}, { env: 'test', home: root, databaseUrl: control.url('havre'), masterKey: randomBytes(32).toString('base64'), log: { level: 'silent' }, ...options.config });
    const core = createCore(config, { db });
    const app = options.http ? await createApp(core) : null;
    const modules = app ? app.modules : createModules(core);
    return {
      core,
      modules,
      app,
      servers: clusters.slice(1),
      async close() {
        if (app) await app.http.close().catch(() => {});
        await modules.fleet.connections.closeAll().catch(() => {});
        await db.destroy().catch(() => {});
        for (const c of clusters.reverse()) await c.stop().catch(() => {});
        await rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    for (const c of clusters.reverse()) await c.stop().catch(() => {});
    await rm(root, { recursive: true, force: true });
    throw err;
  }
}

/** Nearest-rank percentile of `values` (ms). */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const round = (v: number) => Math.round(v * 10) / 10;
  return {
    n: values.length,
    p50: round(percentile(values, 50)),
    p95: round(percentile(values, 95)),
    p99: round(percentile(values, 99)),
    mean: round(values.reduce((a, b) => a + b, 0) / values.length),
    max: round(Math.max(...values)),
  };
}

/** Times `fn` `n` times in sequence; returns the durations in ms. */
export async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    out.push(performance.now() - t);
  }
  return out;
}

export function machine(): Record<string, unknown> {
  return { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version, loadAverageAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) };
}
