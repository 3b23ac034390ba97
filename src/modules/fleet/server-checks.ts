/**
 * What Havre checks on a database server before registering it, and how it hardens it.
 *
 * Version: tenant backups use the local `pg_dump`, which cannot dump a server of a newer major
 * version; Havre also relies on PostgreSQL ≥ 15 (CREATE DATABASE … STRATEGY, pg_database_owner).
 * Privileges: the admin role must be able to create databases and roles.
 * Hardening: no one but explicitly granted roles may connect to `postgres` and `template1`, so a
 * tenant role can reach nothing on the server but its own database (TEN-1).
 */
import pg from 'pg';
import { badRequest } from '../../lib/errors.ts';
import { localToolMajor } from '../../lib/pg-tools.ts';
import { ident } from './sql-names.ts';

const MIN_MAJOR = 15;
/** Arbitrary constant: serialises hardening of one server by several Havre nodes (concurrent GRANT/REVOKE on one row fail). */
const HARDEN_LOCK_KEY = 7_311_004_301;
const HARDENED_DATABASES = ['postgres', 'template1'];

export interface ServerProbe {
  versionNum: number;
  major: number;
  superuser: boolean;
  warnings: string[];
}

/**
 * URL parameters that make the pg client read files of THIS host when the URL is parsed (so staff
 * could make Havre read arbitrary files, and a missing one would throw at parse time).
 */
const FILE_PARAMETERS = ['sslcert', 'sslkey', 'sslrootcert', 'sslcrl'];

/** 400 `invalid_server_url` when the URL names local files (see FILE_PARAMETERS). */
export function assertNoFileParameters(adminUrl: string): void {
  let params: URLSearchParams;
  try {
    params = new URL(adminUrl).searchParams;
  } catch {
    throw badRequest('invalid_server_url', 'The URL must look like postgres://user:password@host:5432/postgres.');
  }
  const named = [...new Set([...params.keys()].map((k) => k.toLowerCase()).filter((k) => FILE_PARAMETERS.includes(k)))];
  if (named.length > 0) {
    throw badRequest(
      'invalid_server_url',
      `The URL must not name local files (${named.join(', ')}): Havre does not read certificate or key files from a server URL. Use sslmode=require or verify-full with the system's trusted CAs.`,
      { parameters: named },
    );
  }
}

/** Connects with the admin URL and checks version and privileges; throws a clear 400 otherwise. */
export async function probeServer(adminUrl: string): Promise<ServerProbe> {
  assertNoFileParameters(adminUrl);
  let client: pg.Client;
  try {
    // Parsing happens here (pg-connection-string): a malformed URL is the client's error, not a 500.
    client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000, application_name: 'havre-admin' });
  } catch {
    throw badRequest('invalid_server_url', 'This URL cannot be parsed as a PostgreSQL connection URL (check the percent-encoding of the user and password).');
  }
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => {});
    throw badRequest('server_unreachable', `Could not connect to the database server with this URL: ${(err as Error).message}`);
  }
  try {
    const { rows } = await client.query<{ version_num: string; rolsuper: boolean; rolcreatedb: boolean; rolcreaterole: boolean }>(
      `SELECT current_setting('server_version_num') AS version_num, r.rolsuper, r.rolcreatedb, r.rolcreaterole
         FROM pg_roles r WHERE r.rolname = current_user`,
    );
    const row = rows[0]!;
    const versionNum = Number(row.version_num);
    const major = Math.floor(versionNum / 10_000);
    const warnings: string[] = [];
    if (major < MIN_MAJOR) {
      throw badRequest('server_version_unsupported', `This server runs PostgreSQL ${major}; Havre needs PostgreSQL ${MIN_MAJOR} or newer.`, { serverMajor: major });
    }
    const dumpMajor = await localToolMajor('pg_dump');
    if (dumpMajor === null) {
      warnings.push(`pg_dump is not installed here: tenant backups need it (install postgresql-client-${major}).`);
    } else if (dumpMajor < major) {
      throw badRequest(
        'server_version_unsupported',
        `This server runs PostgreSQL ${major} but the local pg_dump is version ${dumpMajor}, which cannot back it up: install postgresql-client-${major} or register a PostgreSQL ${dumpMajor} server.`,
        { serverMajor: major, pgDumpMajor: dumpMajor },
      );
    }
    if (!row.rolsuper && !(row.rolcreatedb && row.rolcreaterole)) {
      throw badRequest('server_privileges_insufficient', 'The role in this URL must be able to create databases and roles (CREATEDB and CREATEROLE, or superuser).');
    }
    const hardening = await hardenServer(client, row.rolsuper);
    warnings.push(...hardening);
    return { versionNum, major, superuser: row.rolsuper, warnings };
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Revokes CONNECT and TEMPORARY on `postgres` and `template1` from PUBLIC (idempotent; only where
 * still granted). A non-superuser admin first keeps its own access to the database it uses.
 * Returns warnings for what it could not change (e.g. a managed server where the admin role does
 * not own those databases).
 */
export async function hardenServer(client: pg.ClientBase, superuser: boolean): Promise<string[]> {
  const publicAccess = `SELECT datname FROM pg_database
     WHERE datname = ANY($1)
       AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))`;
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [HARDEN_LOCK_KEY]);
    const open = await client.query<{ datname: string }>(publicAccess, [HARDENED_DATABASES]);
    if (open.rows.length > 0 && !superuser) {
      const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
      // The admin's database name is not ours: quoted, not checked against our pattern.
      await client.query(`GRANT CONNECT ON DATABASE ${client.escapeIdentifier(rows[0]!.db)} TO CURRENT_USER`).catch(() => {});
    }
    for (const { datname } of open.rows) {
      await client.query(`REVOKE CONNECT, TEMPORARY ON DATABASE ${ident(datname)} FROM PUBLIC`);
    }
    const still = await client.query<{ datname: string }>(publicAccess, [HARDENED_DATABASES]);
    await client.query('COMMIT');
    return still.rows.map((r) => `PUBLIC can still connect to database "${r.datname}" (the admin role could not revoke it): revoke it as its owner.`);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}
