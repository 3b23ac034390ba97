/**
 * Provisioning benchmark: N tenants created through the tenants service on one server, with a
 * pre-warmed pool and with an empty pool, beside raw `CREATE DATABASE` on the same server in the
 * same run. Target: p50 ≤ 50 ms with the warm pool, and ≤ 0.5 × raw CREATE DATABASE.
 */
import pg from 'pg';
import { startBenchHavre, summarize, timeEach, machine, type BenchResult, type Summary } from './bench-kit.ts';

const N = 200;

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 0 } }, log });
  try {
    const { core, modules } = havre;
    const serverUrl = havre.servers[0]!.url('postgres');
    const server = await modules.fleet.servers.add({ name: 'bench-fr', region: 'fr', adminUrl: serverUrl, maxTenants: 10_000 });
    const now = new Date();
    const customer = await core.db.insertInto('customers').values({ name: 'Bench SAS', country: 'FR', postal_address: null, contact_user_id: null, dpo_name: null, dpo_email: null, created_at: now, updated_at: now }).returning('id').executeTakeFirstOrThrow();
    const createTenant = (i: number) => modules.tenants.service.create({ customerId: customer.id, name: `Bench ${i}`, region: 'fr', actor: { type: 'cli' } });

    // 1. Baseline: raw CREATE DATABASE on the same server (server defaults, i.e. STRATEGY WAL_LOG on 15),
    //    and with STRATEGY FILE_COPY (what Havre uses).
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    log(`raw CREATE DATABASE ×${N}`);
    const raw = await timeEach(N, (i) => admin.query(`CREATE DATABASE bench_raw_${i}`));
    log(`raw CREATE DATABASE … STRATEGY FILE_COPY ×${N}`);
    const rawFileCopy = await timeEach(N, (i) => admin.query(`CREATE DATABASE bench_fc_${i} TEMPLATE template0 STRATEGY FILE_COPY`));
    await admin.end();

    // 2. Through the service with an empty pool: each creation finds none, rolls back, provisions one
    //    outside any transaction (fleet.databases.ensureAvailable) and claims it on the retry.
    log(`tenants.service.create ×${N}, empty pool`);
    const empty = await timeEach(N, (i) => createTenant(i));

    // 3. Pre-warm N databases (timed separately), then create through the service.
    log(`pre-warming ${N} databases`);
    const t = performance.now();
    const warmed = await modules.fleet.pool.refill(server.id, { target: N, concurrency: 2 });
    const prewarmMs = performance.now() - t;
    log(`tenants.service.create ×${N}, warm pool`);
    const warm = await timeEach(N, (i) => createTenant(N + i));
    const leftInPool = (await modules.fleet.servers.list())[0]!.pooledDatabases;

    const s = { raw: summarize(raw), rawFileCopy: summarize(rawFileCopy), empty: summarize(empty), warm: summarize(warm) };
    const ratio = (a: Summary, b: Summary) => Math.round((a.p50 / b.p50) * 1000) / 1000;
    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      tenants: N,
      path: 'modules.tenants.service.create (tenant row, audit, fleet.databases.acquire claiming a pooled database in the same transaction, trial transition; with none pooled: rollback, ensureAvailable outside, retry)',
      server: 'embedded PostgreSQL 15, default (durable) settings, same machine',
      ms: s,
      prewarm: { databases: warmed, totalMs: Math.round(prewarmMs), perDatabaseMs: Math.round((prewarmMs / Math.max(1, warmed)) * 10) / 10, concurrency: 2 },
      leftInPoolAfterWarmRun: leftInPool,
      ratios: {
        warmP50_over_rawCreateDatabaseP50: ratio(s.warm, s.raw),
        warmP50_over_rawFileCopyP50: ratio(s.warm, s.rawFileCopy),
        emptyP50_over_rawCreateDatabaseP50: ratio(s.empty, s.raw),
      },
      targets: { warmP50AtMost50ms: s.warm.p50 <= 50, warmP50AtMostHalfOfRaw: s.warm.p50 <= 0.5 * s.raw.p50 },
    };
    const row = (label: string, x: Summary) => `| ${label} | ${x.n} | ${x.p50} | ${x.p95} | ${x.p99} | ${x.mean} | ${x.max} |`;
    const markdown = [
      `# Provisioning benchmark`,
      '',
      `${json.date} — ${json.machine.cpus} × ${json.machine.cpuModel}, Node ${json.machine.node}; ${json.server}.`,
      `Path measured: ${json.path}.`,
      '',
      '| what | n | p50 ms | p95 ms | p99 ms | mean ms | max ms |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      row('raw `CREATE DATABASE` (server default strategy)', s.raw),
      row('raw `CREATE DATABASE … TEMPLATE template0 STRATEGY FILE_COPY`', s.rawFileCopy),
      row('tenant creation, empty pool (database created on the spot)', s.empty),
      row('tenant creation, warm pool', s.warm),
      '',
      `Pre-warming ${warmed} databases took ${json.prewarm.totalMs} ms (${json.prewarm.perDatabaseMs} ms each, ${json.prewarm.concurrency} at a time), in the background in production.`,
      '',
      `Ratios (p50): warm / raw CREATE DATABASE = **${json.ratios.warmP50_over_rawCreateDatabaseP50}**; warm / raw FILE_COPY = ${json.ratios.warmP50_over_rawFileCopyP50}; empty pool / raw CREATE DATABASE = ${json.ratios.emptyP50_over_rawCreateDatabaseP50}.`,
      '',
      `Targets: warm p50 ≤ 50 ms: **${json.targets.warmP50AtMost50ms ? 'met' : 'NOT met'}**; warm p50 ≤ 0.5 × raw: **${json.targets.warmP50AtMostHalfOfRaw ? 'met' : 'NOT met'}**.`,
      '',
      `Load average at the end: ${(json.machine.loadAverageAtEnd as number[]).join(', ')} (other work on the machine affects the figures).`,
      '',
    ].join('\n');
    return { name: 'provisioning', json, markdown };
  } finally {
    await havre.close();
  }
}
