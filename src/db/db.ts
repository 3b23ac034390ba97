/**
 * The control-plane database client (Kysely over a `pg` pool) and the migrator.
 *
 * Migrations are timestamped SQL files in ./migrations, applied in order by Kysely's migrator,
 * each in its own transaction; Kysely's lock table makes concurrent starts of several API nodes
 * safe (only one applies, the others wait).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import pg from 'pg';
import type { DB } from './schema.ts';

export type Db = Kysely<DB>;
export type Trx = Transaction<DB>;
/** Anything that can run a query: the database or an open transaction. */
export type Executor = Kysely<DB> | Transaction<DB>;

// Return bigint/numeric as strings (exact), but int8 counts that fit are parsed by callers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => v);
// Business dates (`date` columns) stay `YYYY-MM-DD` strings: a Date would put them at a midnight
// of the process's time zone, one day off for half the planet.
pg.types.setTypeParser(pg.types.builtins.DATE, (v) => v);

const hosts = new WeakMap<object, string>();

/** host:port/database of a Db, for error messages (never the credentials). */
function redactUrl(db: Db): string {
  return hosts.get(db) ?? 'unknown host';
}

export function createDb(connectionString: string, max = 10): Db {
  // connectionTimeoutMillis: an exhausted pool is an error after 10 s, never a silent hang.
  const pool = new pg.Pool({ connectionString, max, application_name: 'havre', connectionTimeoutMillis: 10_000 });
  let where = 'unknown host';
  try {
    const u = new URL(connectionString);
    where = `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    // not a URL (key=value form): leave it unnamed rather than risk printing a password
  }
  pool.on('error', () => {
    // An idle client lost its connection (server restart): the pool drops it and reconnects.
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  hosts.set(db, where);
  return db;
}

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

class SqlFileMigrationProvider implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    const files = (await readdir(migrationsDir)).filter((f) => f.endsWith('.sql')).sort();
    const out: Record<string, Migration> = {};
    for (const file of files) {
      const text = await readFile(path.join(migrationsDir, file), 'utf8');
      out[file.replace(/\.sql$/, '')] = {
        up: async (db) => {
          await sql.raw(text).execute(db);
        },
      };
    }
    return out;
  }
}

/** Applies every pending migration; throws with the failing migration's name and error. */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new SqlFileMigrationProvider() });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error && !failed) {
    throw new Error(`cannot reach the control-plane database (${redactUrl(db)}): ${(error as Error).message}`, { cause: error });
  }
  if (error) {
    throw new Error(`migration ${failed!.migrationName} failed: ${(error as Error).message}`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
