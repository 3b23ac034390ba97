/**
 * 1,000 tenant databases on one server, each queried through `withTenant` (twice, 100 requests in
 * flight) with a global cap of 40 connections: every query must succeed and the server must never
 * see more than 40 tenant-role backends.
 */
import pg from 'pg';
import { machine, startBenchHavre, summarize, type BenchResult } from './bench-kit.ts';

const TENANTS = 1_000;
const GLOBAL_MAX = 40;
const IN_FLIGHT = 100;

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 0, connections: { perTenantMax: 2, globalMax: GLOBAL_MAX, idleMs: 5_000 } } }, log });
  try {
    const { core, modules } = havre;
    const serverUrl = havre.servers[0]!.url('postgres');
    const server = await modules.fleet.servers.add({ name: 'bench-crowded', region: 'fr', adminUrl: serverUrl, maxTenants: 10_000 });
    log(`creating ${TENANTS} tenant databases (4 at a time)`);
    const t0 = performance.now();
    const created = await modules.fleet.pool.refill(server.id, { target: TENANTS, concurrency: 4 });
    const createMs = performance.now() - t0;
    const rows = await core.db.selectFrom('tenant_databases').select(['id', 'role_name']).where('state', '=', 'pooled').execute();
    const roles = rows.map((r) => r.role_name);

    let peak = 0;
    let samples = 0;
    let watching = true;
    const watcher = (async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      while (watching) {
        const { rows: r } = await c.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1)', [roles]);
        peak = Math.max(peak, r[0]!.n);
        samples++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await c.end();
    })();

    log(`querying each tenant twice, ${IN_FLIGHT} in flight, cap ${GLOBAL_MAX}`);
    const order = [...rows, ...rows];
    const latencies: number[] = [];
    let failures = 0;
    let next = 0;
    const t1 = performance.now();
    const worker = async () => {
      while (next < order.length) {
        const row = order[next++]!;
        const t = performance.now();
        try {
          await modules.fleet.connections.withTenant(row.id, (c) => c.query('SELECT schema_version FROM havre_meta'));
          latencies.push(performance.now() - t);
        } catch {
          failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    const queryMs = performance.now() - t1;
    watching = false;
    await watcher;

    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      tenants: created,
      globalMax: GLOBAL_MAX,
      perTenantMax: 2,
      inFlight: IN_FLIGHT,
      createTotalMs: Math.round(createMs),
      createPerDatabaseMs: Math.round((createMs / Math.max(1, created)) * 10) / 10,
      queries: order.length,
      failures,
      queryTotalMs: Math.round(queryMs),
      queryLatencyMs: summarize(latencies),
      peakTenantBackends: peak,
      pgStatActivitySamples: samples,
      capRespected: peak <= GLOBAL_MAX,
    };
    const markdown = [
      '# 1,000 tenants on one server: connections',
      '',
      `${json.date} — ${json.machine.cpus} × ${json.machine.cpuModel}; embedded PostgreSQL 15, default settings.`,
      '',
      `- ${created} tenant databases created in ${json.createTotalMs} ms (${json.createPerDatabaseMs} ms each, 4 at a time).`,
      `- ${json.queries} queries through \`withTenant\` (each tenant twice, ${IN_FLIGHT} in flight): ${failures} failures, ${json.queryTotalMs} ms in all; latency p50 ${json.queryLatencyMs.p50} ms, p95 ${json.queryLatencyMs.p95} ms, p99 ${json.queryLatencyMs.p99} ms (most include opening a connection as the tenant role, SCRAM).`,
      `- Peak tenant-role backends seen in \`pg_stat_activity\` (${samples} samples): **${peak}** for a cap of ${GLOBAL_MAX} — ${json.capRespected ? 'respected' : 'EXCEEDED'}.`,
      '',
    ].join('\n');
    return { name: 'connections', json, markdown };
  } finally {
    await havre.close();
  }
}
