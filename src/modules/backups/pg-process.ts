/**
 * pg_dump and pg_restore as child processes, and the per-table facts a backup's manifest records.
 *
 * Credentials go to the child through PG* environment variables, never argv (visible to every
 * user of the machine in `ps`). stderr is kept (bounded) for the error message, with passwords
 * never in it (libpq does not print them).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type pg from 'pg';
import { toolSearchPath } from '../../config/config.ts';
import { spawnIgzip } from '../../lib/igzip.ts';

/** The PG* environment of a libpq program for a pg connection config (URL form). */
export function pgEnvironment(target: pg.ClientConfig): NodeJS.ProcessEnv {
  if (!target.connectionString) throw new Error('a connection string is needed');
  const url = new URL(target.connectionString);
  const env: NodeJS.ProcessEnv = {
    PATH: toolSearchPath(),
    PGHOST: decodeURIComponent(url.hostname),
    PGPORT: url.port || '5432',
    PGUSER: decodeURIComponent(url.username),
    PGPASSWORD: decodeURIComponent(url.password),
    PGDATABASE: decodeURIComponent(url.pathname.replace(/^\//, '')),
    PGAPPNAME: 'havre-backup',
    PGCONNECT_TIMEOUT: '10',
  };
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

/** A running pg tool: its stdin/stdout, and a promise of its end (rejects with stderr on failure). */
export interface PgProcess {
  child: ChildProcess;
  stdin: Writable;
  stdout: Readable;
  done: Promise<void>;
  /** Kills it (and the processes it feeds) unless it has exited. */
  kill(): void;
}

/** Size of pg_dump's stdout buffer when coreutils' `stdbuf` can set it (see `pgDump`). */
const DUMP_OUTPUT_BUFFER = '1M';
let stdbufPath: string | null | undefined;

/** coreutils' `stdbuf` on the tools' search path, or null (looked up once). */
function stdbuf(): string | null {
  if (stdbufPath === undefined) {
    stdbufPath = null;
    for (const dir of (toolSearchPath() ?? '').split(path.delimiter).filter(Boolean)) {
      try {
        accessSync(path.join(dir, 'stdbuf'), constants.X_OK);
        stdbufPath = path.join(dir, 'stdbuf');
        break;
      } catch {
        // not in this directory
      }
    }
  }
  return stdbufPath;
}

function run(tool: 'pg_dump' | 'pg_restore', args: string[], target: pg.ClientConfig, outputBuffer?: string, stdout: 'pipe' | Writable = 'pipe'): PgProcess {
  const wrapper = outputBuffer ? stdbuf() : null;
  const [command, argv] = wrapper ? [wrapper, [`--output=${outputBuffer}`, tool, ...args]] : [tool, args];
  const child = spawn(command, argv, { env: pgEnvironment(target), stdio: ['pipe', stdout, 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => {
    if (stderr.length < 4000) stderr += s;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`${tool} could not start: ${err.message}`)));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${tool} failed (${signal ?? `exit ${code}`}): ${stderr.trim().slice(0, 800) || 'no message'}`));
    });
  });
  // The caller attaches its own handlers to `done`; an unobserved failure must not crash the process.
  done.catch(() => {});
  return { child, stdin: child.stdin!, stdout: child.stdout!, done, kill: () => killIfRunning(child) };
}

function killIfRunning(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

function dumpArgs(compression: number, snapshot: string | undefined): string[] {
  const args = ['--format=custom', `--compress=${compression}`, '--no-privileges', '--no-sync'];
  if (snapshot) args.push(`--snapshot=${snapshot}`);
  return args;
}

/**
 * `pg_dump -Fc` of the tenant database as of an exported snapshot. `--no-privileges`: a tenant
 * database carries REVOKEs on statistics views that a tenant role cannot replay (docs/ARCHITECTURE.md);
 * the tenant role owns every object, so nothing of the tenant's is lost.
 *
 * pg_dump writes its archive through C stdio, which buffers a pipe by 4–8 KiB: some 40,000 writes
 * for a 300 MiB archive, each waking Havre up. Run under coreutils' `stdbuf --output=1M` (when
 * installed), it writes 1 MiB at a time; the bytes are the same (bench/results/backup.md).
 */
export function pgDump(target: pg.ClientConfig, options: { snapshot?: string; compression: number }): PgProcess {
  const p = run('pg_dump', dumpArgs(options.compression, options.snapshot), target, DUMP_OUTPUT_BUFFER);
  p.stdin.end();
  return p;
}

/**
 * `pg_dump -Fc --compress=0` (otherwise as `pgDump`) piped straight into ISA-L's `igzip` at
 * `level` (src/lib/igzip.ts): `stdout` is a gzip stream whose content is the custom-format archive
 * (`gunzip | pg_restore` reads it). Why: pg_dump's own zlib, at its fastest level, is what limits a
 * dump on a small machine (one core for ~150 MiB/s of table data); igzip does the same work in a
 * fifth of the CPU and compresses a little better (bench/results/backup.md).
 *
 * The two are joined by an OS pipe: igzip is started first and pg_dump writes into igzip's stdin,
 * whose write end Havre then closes; no byte goes through Node (nor could Node read one early).
 * `done` rejects if either fails; a pg_dump that fails half-way leaves a valid-looking gzip of
 * half a dump, so the caller must wait for `done` before trusting the bytes.
 */
export function pgDumpGzip(target: pg.ClientConfig, options: { snapshot?: string; level: number }): PgProcess {
  const { child: gzip, done: gzipped } = spawnIgzip(options.level);
  const dump = run('pg_dump', dumpArgs(0, options.snapshot), target, DUMP_OUTPUT_BUFFER, gzip.stdin!);
  dump.stdin.end();
  // pg_dump holds its own copy of the pipe's write end; igzip sees the end when pg_dump exits.
  gzip.stdin!.destroy();
  // Both must succeed. When both fail, the first cause first: a pg_dump killed by SIGPIPE means
  // igzip died before it (igzip's message says why).
  const done = Promise.allSettled([dump.done, gzipped]).then(([d, g]) => {
    const errors = [d, g].flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
    if (errors.length === 0) return;
    if (errors.length === 2 && /SIGPIPE/.test(errors[0]!.message)) errors.reverse();
    throw new Error(errors.map((e) => e.message).join('; '), { cause: errors[0] });
  });
  done.catch(() => {});
  return {
    child: dump.child,
    stdin: dump.stdin,
    stdout: gzip.stdout!,
    done,
    kill: () => {
      killIfRunning(dump.child);
      killIfRunning(gzip);
    },
  };
}

/**
 * `pg_restore` of a custom-format dump read from stdin into the target database, in one
 * transaction (a failure leaves the target as it was), objects owned by the connecting role.
 */
export function pgRestore(target: pg.ClientConfig): PgProcess {
  return run('pg_restore', ['--no-owner', '--no-privileges', '--single-transaction', '--exit-on-error', `--dbname=${pgEnvironment(target).PGDATABASE}`], target);
}

export interface TableFacts {
  name: string;
  rows: number;
  /** Order-independent checksum of the rows (see tableFacts), as text. */
  checksum: string;
}

/**
 * Row count and checksum of every table of schema `public`, computed by PostgreSQL in one scan per
 * table (constant memory in Havre). The checksum is the sum of each row's 64-bit
 * `hash_record_extended` (PostgreSQL's own hash of the row's values, type by type:
 * order-independent, and the same on a restored copy), summed exactly (sum of bigint is numeric,
 * accumulated in 128-bit integers: a cast of each hash to numeric first gives the same sum, slower). A table with a column type that has no hash
 * support falls back to md5 of the rows' text forms (text settings fixed here), marked `md5:`.
 * Runs inside the caller's transaction (savepoints for the fallback).
 */
export async function tableFacts(client: pg.ClientBase): Promise<TableFacts[]> {
  await client.query(`SET LOCAL TimeZone TO 'UTC'; SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL IntervalStyle TO 'postgres'; SET LOCAL extra_float_digits TO 3; SET LOCAL bytea_output TO 'hex'`);
  const { rows: tables } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
  );
  const facts: TableFacts[] = [];
  for (const { name } of tables) {
    const ident = `public."${name.replace(/"/g, '""')}"`;
    await client.query('SAVEPOINT havre_facts');
    try {
      const { rows } = await client.query<{ rows: string; checksum: string }>(`SELECT count(*)::text AS rows, coalesce(sum(hash_record_extended(t, 0)), 0)::text AS checksum FROM ${ident} t`);
      facts.push({ name, rows: Number(rows[0]!.rows), checksum: rows[0]!.checksum });
      await client.query('RELEASE SAVEPOINT havre_facts');
    } catch {
      await client.query('ROLLBACK TO SAVEPOINT havre_facts');
      const { rows } = await client.query<{ rows: string; checksum: string }>(
        `SELECT count(*)::text AS rows, 'md5:' || coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text AS checksum FROM ${ident} t`,
      );
      facts.push({ name, rows: Number(rows[0]!.rows), checksum: rows[0]!.checksum });
    }
  }
  return facts;
}

/** Compares facts with a manifest's; returns the differences in words (empty when equal). */
export function compareFacts(expected: readonly TableFacts[], actual: readonly TableFacts[]): string[] {
  const problems: string[] = [];
  const byName = new Map(actual.map((t) => [t.name, t]));
  for (const e of expected) {
    const a = byName.get(e.name);
    if (!a) problems.push(`table ${e.name} is missing`);
    else if (a.rows !== e.rows) problems.push(`table ${e.name}: ${a.rows} rows, expected ${e.rows}`);
    else if (a.checksum !== e.checksum) problems.push(`table ${e.name}: checksum differs`);
    byName.delete(e.name);
  }
  for (const name of byName.keys()) problems.push(`unexpected table ${name}`);
  return problems;
}
