/**
 * The workspace schema inside each tenant database, as numbered SQL migrations (TEN-6):
 * `schema/NNNN_name.sql`, numbered 1, 2, 3… without gaps. A tenant database records the version it
 * is at in `havre_meta.schema_version` (created by the fleet's provisioner at 0) and every applied
 * migration in `havre_schema_history` (primary key = version: applying one twice is impossible).
 *
 * An upgrade runs as the tenant's own role, in ONE transaction: the row of `havre_meta` is locked
 * first (`FOR UPDATE`, so two upgraders of one tenant — two rollout workers, a rollout and a lazy
 * upgrade — serialize, and the second sees the new version and applies nothing), then every
 * pending migration, then the new version. Any failure rolls all of it back: the tenant stays
 * intact on its old version. PostgreSQL's DDL is transactional, so a migration must not use
 * statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, VACUUM…): the loader
 * refuses them.
 *
 * A migration whose first lines contain `-- havre:interrupts-service` takes locks long enough to
 * interrupt the workspace (e.g. rewriting a big table): the rollout sends customers a maintenance
 * notice before applying it (see rollout).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

export interface TenantMigration {
  version: number;
  name: string;
  sql: string;
  /** SHA-256 of the SQL text, recorded with the version (a changed file is noticed). */
  checksum: string;
  /** Declared with `-- havre:interrupts-service`: customers get a maintenance notice first. */
  interruptsService: boolean;
}

export interface UpgradeResult {
  from: number;
  to: number;
  /** Versions applied by this call (empty when the tenant was already there). */
  applied: number[];
}

export const SCHEMA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'schema');

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const NOT_IN_TRANSACTION = /\b(CONCURRENTLY|VACUUM|ALTER\s+SYSTEM|CREATE\s+DATABASE|DROP\s+DATABASE)\b/i;

/** Parses one migration file's text; throws on what would not run safely in a transaction. */
export function parseMigration(version: number, name: string, sql: string): TenantMigration {
  const code = sql.replace(/--.*$/gm, '');
  if (NOT_IN_TRANSACTION.test(code)) throw new Error(`workspace migration ${version} (${name}) uses a statement that cannot run inside a transaction`);
  if (/^\s*(BEGIN|COMMIT|ROLLBACK)\s*;/im.test(code)) throw new Error(`workspace migration ${version} (${name}) must not manage its own transaction`);
  const header = sql.split('\n').slice(0, 10).join('\n');
  return {
    version,
    name,
    sql,
    checksum: createHash('sha256').update(sql).digest('hex'),
    interruptsService: /^--\s*havre:interrupts-service\b/m.test(header),
  };
}

/** Reads `dir`'s migrations in order; throws when numbering has a gap or a duplicate. */
export function loadTenantMigrations(dir: string = SCHEMA_DIR): TenantMigration[] {
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  return files.map((file, index) => {
    const match = FILE_NAME.exec(file);
    if (!match) throw new Error(`workspace migration file name "${file}" is not NNNN_name.sql`);
    const version = Number(match[1]);
    if (version !== index + 1) throw new Error(`workspace migrations must be numbered 1, 2, 3… without gaps; found ${file} at position ${index + 1}`);
    return parseMigration(version, match[2]!, readFileSync(path.join(dir, file), 'utf8'));
  });
}

/** The workspace migrations shipped with this version of Havre. */
export const WORKSPACE_MIGRATIONS: readonly TenantMigration[] = Object.freeze(loadTenantMigrations());
export const LATEST_SCHEMA_VERSION = WORKSPACE_MIGRATIONS.length;

/**
 * The oldest schema this code can serve. Tenants below it are upgraded on first access (see
 * workspace-access). A release that changes the schema in a way old code cannot read raises it
 * only once the previous release has been rolled out everywhere (expand, roll out, then contract).
 */
export const MIN_SERVED_SCHEMA_VERSION = 3;

const HISTORY_DDL = `CREATE TABLE IF NOT EXISTS havre_schema_history (
  version int PRIMARY KEY,
  name text NOT NULL,
  checksum text NOT NULL,
  applied_at timestamptz NOT NULL
)`;

export interface UpgradeOptions {
  /** Passed to `SET LOCAL lock_timeout`: a tenant busy with long transactions fails (and is retried) rather than queueing everything behind the DDL. */
  lockTimeoutMs?: number;
  now: Date;
}

/**
 * Upgrades the tenant database `client` is connected to (as the tenant role) to `target`, in one
 * transaction (see the file comment). Never downgrades: a tenant already at or above `target` is
 * left as is. Returns the versions before and after.
 */
export async function upgradeTenantSchema(client: pg.ClientBase, migrations: readonly TenantMigration[], target: number, options: UpgradeOptions): Promise<UpgradeResult> {
  if (!Number.isInteger(target) || target < 0 || target > migrations.length) throw new Error(`no workspace schema version ${target} (latest is ${migrations.length})`);
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.trunc(options.lockTimeoutMs ?? 30_000))}`);
    const { rows } = await client.query<{ schema_version: number }>('SELECT schema_version FROM havre_meta FOR UPDATE');
    if (rows.length !== 1) throw new Error('tenant database has no havre_meta row: not a Havre tenant database');
    const from = rows[0]!.schema_version;
    if (from >= target) {
      await client.query('ROLLBACK');
      return { from, to: from, applied: [] };
    }
    await client.query(HISTORY_DDL);
    const applied: number[] = [];
    for (const migration of migrations.slice(from, target)) {
      await client.query(migration.sql);
      await client.query('INSERT INTO havre_schema_history (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)', [migration.version, migration.name, migration.checksum, options.now]);
      applied.push(migration.version);
    }
    await client.query('UPDATE havre_meta SET schema_version = $1', [target]);
    await client.query('COMMIT');
    return { from, to: target, applied };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/** The version a tenant database is at (read inside it). */
export async function readSchemaVersion(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ schema_version: number }>('SELECT schema_version FROM havre_meta');
  return rows[0]?.schema_version ?? 0;
}
