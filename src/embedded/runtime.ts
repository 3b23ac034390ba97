/**
 * The embedded default: everything under `$HAVRE_HOME` (default `./.havre`).
 *
 *   .havre/secrets.json     master key and the embedded superuser password (mode 0600, made once)
 *   .havre/pg/control       control-plane PostgreSQL (port basePort)
 *   .havre/pg/<region>      one PostgreSQL per region, a real separate instance (basePort+1, +2…)
 *
 * `havre start` starts them and stops them on exit. Other CLI commands reuse the running ones when
 * `havre start` is up, and otherwise start them for the duration of the command.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile, chmod } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import type { Config } from '../config/config.ts';
import { startEmbeddedCluster, type EmbeddedCluster } from './embedded-postgres.ts';

export interface EmbeddedSecrets {
  masterKey: string;
  postgresPassword: string;
}

export interface EmbeddedRuntime {
  databaseUrl: string;
  masterKey: string;
  regionServers: { region: string; name: string; adminUrl: string }[];
  /** True when this process started the clusters (and must stop them). */
  owned: boolean;
  stop(): Promise<void>;
}

/** Reads `secrets.json`, creating it with fresh random values on first use. */
export async function loadEmbeddedSecrets(home: string): Promise<EmbeddedSecrets> {
  const file = path.join(home, 'secrets.json');
  if (existsSync(file)) return JSON.parse(await readFile(file, 'utf8')) as EmbeddedSecrets;
  await mkdir(home, { recursive: true });
  const secrets: EmbeddedSecrets = { masterKey: randomBytes(32).toString('base64'), postgresPassword: randomBytes(24).toString('base64url') };
  await writeFile(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  await chmod(file, 0o600);
  return secrets;
}

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1500 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
}

/** Starts (or reuses) the embedded clusters described by `config`. */
export async function openEmbedded(config: Config, log: (line: string) => void = () => {}): Promise<EmbeddedRuntime> {
  const secrets = await loadEmbeddedSecrets(config.home);
  const base = config.embedded.basePort;
  const plan = [
    { key: 'control', port: base },
    ...config.embedded.regions.map((region, i) => ({ key: region, port: base + 1 + i })),
  ];
  const url = (port: number, db: string) => `postgres://havre:${encodeURIComponent(secrets.postgresPassword)}@127.0.0.1:${port}/${db}`;

  const running = await Promise.all(plan.map((p) => answers(url(p.port, 'postgres'))));
  let clusters: EmbeddedCluster[] = [];
  let owned = false;
  if (running.every(Boolean)) {
    log('reusing the embedded PostgreSQL servers started by `havre start`');
  } else if (running.some(Boolean)) {
    throw new Error(`some embedded PostgreSQL ports (${plan.map((p) => p.port).join(', ')}) answer and others do not; stop the other Havre first`);
  } else {
    owned = true;
    try {
      for (const p of plan) {
        log(`starting embedded PostgreSQL "${p.key}" on port ${p.port}`);
        clusters.push(await startEmbeddedCluster({ dataDir: path.join(config.home, 'pg', p.key), port: p.port, password: secrets.postgresPassword }));
      }
    } catch (err) {
      await Promise.allSettled(clusters.map((c) => c.stop()));
      throw err;
    }
  }
  await ensureDatabase(url(base, 'postgres'), 'havre');
  return {
    databaseUrl: url(base, 'havre'),
    masterKey: secrets.masterKey,
    regionServers: config.embedded.regions.map((region, i) => ({ region, name: `embedded-${region}`, adminUrl: url(base + 1 + i, 'postgres') })),
    owned,
    async stop() {
      const toStop = clusters;
      clusters = [];
      // Stop in reverse order: regions first, the control plane last.
      for (const c of toStop.reverse()) await c.stop().catch(() => {});
    },
  };
}
