/**
 * Rollout benchmark (TEN-6): N tenant databases made by an "older Havre" (workspace schema at
 * LATEST − 1), then `havre rollout`'s engine brings them to LATEST with the default batch size
 * and concurrency. Same-run baselines: the same migration SQL applied to the same databases over
 * raw admin connections — one database after the other, and 4 at a time (the rollout's default
 * concurrency; once before and once after the rollout, to bracket drift in the load) — each doing exactly what an upgrade does inside a tenant database (as the tenant
 * role: lock havre_meta, migration, history row, new version, commit). The difference is Havre's
 * bookkeeping: the item lease and result in the control plane, the tenant-role connection pools,
 * the recorded schema version and the progress counts.
 * Between runs the databases are put back at LATEST − 1 (not timed).
 */
import pg from 'pg';
import { createMetrics } from '../src/http/metrics.ts';
import { createFleetModule } from '../src/modules/fleet/index.ts';
import { createRolloutsModule } from '../src/modules/rollouts/index.ts';
import { LATEST_SCHEMA_VERSION, upgradeTenantSchema, WORKSPACE_MIGRATIONS } from '../src/modules/workspace/tenant-schema.ts';
import { machine, startBenchHavre, summarize, type BenchResult, type Summary } from './bench-kit.ts';

const N = 500;
const L = LATEST_SCHEMA_VERSION;

/** Runs `task` over `items`, `concurrency` at a time; returns each item's duration (ms). */
async function timedPool<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<unknown>): Promise<number[]> {
  const durations: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      const t = performance.now();
      await task(item);
      durations.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return durations;
}

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 0 } }, log });
  try {
    const { core, modules } = havre;
    const serverUrl = havre.servers[0]!.url('postgres');
    const server = await modules.fleet.servers.add({ name: 'bench-fr', region: 'fr', adminUrl: serverUrl, maxTenants: 10_000 });

    // 1. N databases as an older Havre made them: workspace schema up to L − 1.
    const older = createFleetModule({ ...core, metrics: createMetrics() }, { initializeDatabase: async (c) => (await upgradeTenantSchema(c, WORKSPACE_MIGRATIONS, L - 1, { now: new Date() })).to });
    log(`provisioning ${N} tenant databases at schema version ${L - 1}`);
    let t = performance.now();
    const made = await older.pool.refill(server.id, { target: N, concurrency: 4 });
    const provisionMs = performance.now() - t;
    await older.connections.closeAll();
    const databases = await core.db.selectFrom('tenant_databases').select(['id', 'database_name', 'role_name']).where('state', '=', 'pooled').orderBy('created_at').execute();
    if (databases.length !== N || made !== N) throw new Error(`expected ${N} databases, got ${databases.length}`);

    const asAdmin = async (database: string, fn: (c: pg.Client) => Promise<unknown>) => {
      const url = new URL(serverUrl);
      url.pathname = `/${database}`;
      const c = new pg.Client({ connectionString: url.toString() });
      await c.connect();
      try {
        await fn(c);
      } finally {
        await c.end();
      }
    };
    const migration = WORKSPACE_MIGRATIONS[L - 1]!;
    const rawUpgrade = (d: (typeof databases)[number]) =>
      asAdmin(d.database_name, async (c) => {
        await c.query('BEGIN');
        await c.query(`SET LOCAL ROLE ${d.role_name}`);
        await c.query('SELECT schema_version FROM havre_meta FOR UPDATE');
        await c.query(migration.sql);
        await c.query('INSERT INTO havre_schema_history (version, name, checksum, applied_at) VALUES ($1, $2, $3, now())', [migration.version, migration.name, migration.checksum]);
        await c.query('UPDATE havre_meta SET schema_version = $1', [L]);
        await c.query('COMMIT');
      });
    const reset = async (label: string) => {
      log(`putting the ${N} databases back at version ${L - 1} (${label})`);
      await timedPool(databases, 4, (d) =>
        asAdmin(d.database_name, async (c) => {
          await c.query(`SET ROLE ${d.role_name}`);
          await c.query(`DROP TABLE attachments; DELETE FROM havre_schema_history WHERE version = ${L}; UPDATE havre_meta SET schema_version = ${L - 1}`);
        }),
      );
      await core.db.updateTable('tenant_databases').set({ schema_version: L - 1 }).execute();
    };

    // 2. Baselines: the raw SQL over admin connections, one after the other, then at the rollout's
    //    concurrency (again after the rollout: the two bracket it, showing drift in the machine's load).
    const settings = core.config.workspace.rollout;
    const timedRaw = async (concurrency: number, label: string) => {
      log(`baseline: migration ${L} over raw admin connections, ${label}`);
      const start = performance.now();
      const perTenant = await timedPool(databases, concurrency, rawUpgrade);
      const totalMs = performance.now() - start;
      await reset(`after the baseline ${label}`);
      return { perTenant, totalMs };
    };
    const rawSequential = await timedRaw(1, 'sequentially');
    const rawBefore = await timedRaw(settings.concurrency, `${settings.concurrency} at a time, before the rollout`);

    // 3. The rollout engine with the configured defaults.
    const upgradeMs: number[] = [];
    const rollouts = createRolloutsModule(core, {
      workspace: {
        upgrade: async (id, o) => {
          const start = performance.now();
          const result = await modules.workspace.upgrade(id, o);
          upgradeMs.push(performance.now() - start);
          return result;
        },
      },
    });
    log(`rollout to version ${L}: batch ${settings.batchSize}, concurrency ${settings.concurrency}`);
    t = performance.now();
    const { rollout } = await rollouts.service.create({ actor: { type: 'cli' } });
    const createMs = performance.now() - t;
    const outcome = await rollouts.service.run(rollout!.id, { onProgress: (p) => p.batch % 5 === 0 && log(`batch ${p.batch}: ${p.counts.done}/${p.counts.total} done`) });
    const rolloutMs = performance.now() - t;
    if (outcome.counts.done !== N) throw new Error(`rollout ended with ${JSON.stringify(outcome.counts)}`);
    const items = await core.db.selectFrom('rollout_items').select(['started_at', 'finished_at']).where('rollout_id', '=', rollout!.id).execute();
    const itemMs = items.map((i) => i.finished_at!.getTime() - i.started_at!.getTime());
    await modules.fleet.connections.closeAll();
    await reset('after the rollout');
    const rawAfter = await timedRaw(settings.concurrency, `${settings.concurrency} at a time, after the rollout`);
    const rawConcurrentMs = (rawBefore.totalMs + rawAfter.totalMs) / 2;
    const rawSequentialMs = rawSequential.totalMs;

    const s = {
      rawSequential: summarize(rawSequential.perTenant),
      rawBefore: summarize(rawBefore.perTenant),
      rawAfter: summarize(rawAfter.perTenant),
      upgrade: summarize(upgradeMs),
      item: summarize(itemMs),
    };
    const perSecond = (ms: number) => Math.round((N / (ms / 1000)) * 10) / 10;
    const json = {
      date: new Date().toISOString(),
      machine: machine(),
      tenants: N,
      migration: `${migration.version}_${migration.name} (${L - 1} → ${L})`,
      server: 'embedded PostgreSQL 15, default (durable) settings, same machine; control plane on its own instance',
      settings: { batchSize: settings.batchSize, concurrency: settings.concurrency, maxAttempts: settings.maxAttempts },
      provisioning: { databases: made, totalMs: Math.round(provisionMs) },
      rollout: {
        totalMs: Math.round(rolloutMs),
        createMs: Math.round(createMs),
        tenantsPerSecond: perSecond(rolloutMs),
        upgradeMs: s.upgrade,
        itemMs: s.item,
        batches: Math.ceil(N / settings.batchSize),
      },
      baselines: {
        rawSequential: { totalMs: Math.round(rawSequentialMs), tenantsPerSecond: perSecond(rawSequentialMs), perTenantMs: s.rawSequential },
        rawConcurrentBeforeRollout: { concurrency: settings.concurrency, totalMs: Math.round(rawBefore.totalMs), tenantsPerSecond: perSecond(rawBefore.totalMs), perTenantMs: s.rawBefore },
        rawConcurrentAfterRollout: { concurrency: settings.concurrency, totalMs: Math.round(rawAfter.totalMs), tenantsPerSecond: perSecond(rawAfter.totalMs), perTenantMs: s.rawAfter },
      },
      ratios: {
        rolloutTotal_over_rawSequentialTotal: Math.round((rolloutMs / rawSequentialMs) * 1000) / 1000,
        rolloutTotal_over_rawConcurrentMeanTotal: Math.round((rolloutMs / rawConcurrentMs) * 1000) / 1000,
      },
    };
    const row = (label: string, x: Summary) => `| ${label} | ${x.n} | ${x.p50} | ${x.p95} | ${x.p99} | ${x.mean} | ${x.max} |`;
    const markdown = [
      '# Rollout benchmark',
      '',
      `${json.date} — ${json.machine.cpus} × ${json.machine.cpuModel}, Node ${json.machine.node}; ${json.server}.`,
      `${N} tenant databases at workspace schema ${L - 1}, rolled out to ${L} (migration ${json.migration}); defaults: batch ${settings.batchSize}, concurrency ${settings.concurrency}.`,
      '',
      '| run | total s | tenants/s |',
      '| --- | --- | --- |',
      `| rollout engine (\`havre rollout\`: items, leases, tenant-role pools, recorded versions, progress) | ${(rolloutMs / 1000).toFixed(1)} | ${json.rollout.tenantsPerSecond} |`,
      `| baseline: same SQL over raw admin connections, one after the other | ${(rawSequentialMs / 1000).toFixed(1)} | ${json.baselines.rawSequential.tenantsPerSecond} |`,
      `| baseline: same SQL over raw admin connections, ${settings.concurrency} at a time, just before the rollout | ${(rawBefore.totalMs / 1000).toFixed(1)} | ${json.baselines.rawConcurrentBeforeRollout.tenantsPerSecond} |`,
      `| baseline: the same, just after the rollout | ${(rawAfter.totalMs / 1000).toFixed(1)} | ${json.baselines.rawConcurrentAfterRollout.tenantsPerSecond} |`,
      '',
      '| per tenant | n | p50 ms | p95 ms | p99 ms | mean ms | max ms |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      row('rollout: `workspace.upgrade` (connect as tenant role, locked transaction, record version)', s.upgrade),
      row('rollout: item, lease taken → result recorded (control-plane clock, ms)', s.item),
      row('baseline sequential: connect as admin, SET ROLE, same transaction', s.rawSequential),
      row(`baseline ${settings.concurrency} at a time, before the rollout`, s.rawBefore),
      row(`baseline ${settings.concurrency} at a time, after the rollout`, s.rawAfter),
      '',
      `Creating the rollout (release, ${N} items, audit entry; one transaction) took ${Math.round(createMs)} ms. Provisioning the ${N} databases beforehand took ${(provisionMs / 1000).toFixed(1)} s (not part of the rollout).`,
      '',
      `Ratios (total time): rollout / raw sequential = **${json.ratios.rolloutTotal_over_rawSequentialTotal}**; rollout / raw at the same concurrency (mean of before and after) = **${json.ratios.rolloutTotal_over_rawConcurrentMeanTotal}**.`,
      '',
      'The baselines do only what an upgrade does inside each tenant database; they keep no record of who was upgraded, cannot resume after a crash, retry, isolate failures or show progress. Order of runs: raw sequential, raw concurrent, rollout, raw concurrent again (each on the same databases, reset in between); the two concurrent baselines bracket the rollout, so their spread shows how much the load of the machine moved meanwhile.',
      '',
      `Load average at the end: ${(json.machine.loadAverageAtEnd as number[]).join(', ')} (other work on the machine affects the figures).`,
      '',
    ].join('\n');
    return { name: 'rollout', json, markdown };
  } finally {
    await havre.close();
  }
}
