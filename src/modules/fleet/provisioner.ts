/**
 * Creating and dropping tenant databases (TEN-1), crash-safe.
 *
 * A tenant database is one database with an opaque name, owned by one login role that has no
 * other right: no superuser, createdb, createrole, replication, bypassrls; a connection limit.
 * CONNECT on the database is revoked from PUBLIC and granted to that role only; inside, the
 * `public` schema belongs to the role and PUBLIC has no right on it.
 *
 * Crash safety: the row is committed as `creating` before any DDL; every DDL step tolerates that it
 * was already done (a retry, or a crash between steps); the row becomes `pooled` only when the
 * database is complete. A `creating` row older than a few minutes is a leftover of a crash: the
 * sweeper drops whatever exists of it and deletes the row.
 *
 * The server's admin connection is used to create (including the setup inside the new database)
 * and to drop; everything else reaches the database as the tenant role.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import type { AdminConnections, SealedServer } from './admin-connections.ts';
import * as repo from './fleet-repo.ts';
import { dbIdent, literal, newTenantDatabaseNames, roleIdent } from './sql-names.ts';

/** A `creating` row older than this is a crash leftover (a creation takes well under a second). */
export const CREATING_LEFTOVER_MS = 5 * 60_000;

export function tenantPasswordContext(tenantDatabaseId: string): string {
  return `tenant-db:${tenantDatabaseId}`;
}

/**
 * The SCRAM-SHA-256 verifier of `password` (RFC 5803 format, as PostgreSQL stores it). Sent in
 * CREATE ROLE instead of the password, so the clear password never reaches the server (nor its
 * statement logs).
 */
export function scramVerifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

export interface ProvisionerDeps {
  db: Db;
  clock: Clock;
  secrets: SecretBox;
  admin: AdminConnections;
  roleConnectionLimit: number;
  /**
   * CREATE DATABASE strategy. Default WAL_LOG (PostgreSQL 15's default): FILE_COPY forces two
   * checkpoints per database, which on a durable server was slower at p50 and had multi-second
   * stalls for every tenant of the server (bench/results/provisioning.md).
   */
  strategy?: 'FILE_COPY' | 'WAL_LOG';
}

const errCode = (err: unknown) => (err as { code?: string }).code;

export function createProvisioner(deps: ProvisionerDeps) {
  const { db, clock, secrets, admin } = deps;
  const strategy = deps.strategy ?? 'WAL_LOG';
  const superuser = new Map<string, Promise<boolean>>();

  async function isSuperuser(server: SealedServer, client: pg.PoolClient): Promise<boolean> {
    let known = superuser.get(server.id);
    if (!known) {
      known = client.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = current_user').then((r) => r.rows[0]?.rolsuper === true);
      superuser.set(server.id, known);
    }
    return known;
  }

  /** The DDL of one tenant database; idempotent, so it can be re-run after a crash. */
  async function runCreateDdl(server: SealedServer, row: repo.TenantDatabaseRow, password: string): Promise<void> {
    const database = dbIdent(row.database_name);
    const role = roleIdent(row.role_name);
    const client = await admin.pool(server).connect();
    try {
      const attributes =
        `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT ` +
        `CONNECTION LIMIT ${Number(deps.roleConnectionLimit)} PASSWORD ${literal(client, scramVerifier(password))}`;
      try {
        await client.query(`CREATE ROLE ${role} WITH ${attributes}`);
      } catch (err) {
        if (errCode(err) !== '42710') throw err; // duplicate_object: a previous attempt got this far
        await client.query(`ALTER ROLE ${role} WITH ${attributes}`);
      }
      // A non-superuser admin may create a database owned by a role only as a member of it.
      if (!(await isSuperuser(server, client))) await client.query(`GRANT ${role} TO CURRENT_USER`);
      try {
        await client.query(`CREATE DATABASE ${database} OWNER ${role} TEMPLATE template0 ENCODING 'UTF8' STRATEGY ${strategy}`);
      } catch (err) {
        if (errCode(err) !== '42P04') throw err; // duplicate_database
      }
      await client.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC; GRANT CONNECT, TEMPORARY ON DATABASE ${database} TO ${role}`);
    } finally {
      client.release();
    }

    // Inside the new database (still with the admin role: the tenant role is NOINHERIT, so it
    // cannot act as pg_database_owner, the owner of `public` in a fresh database).
    const inside = new pg.Client({ connectionString: admin.adminUrlFor(server, row.database_name), application_name: 'havre-admin' });
    inside.on('error', () => {});
    await inside.connect();
    try {
      await inside.query(
        `ALTER SCHEMA public OWNER TO ${role};
         REVOKE ALL ON SCHEMA public FROM PUBLIC;
         CREATE TABLE IF NOT EXISTS havre_meta (
           singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
           schema_version int NOT NULL DEFAULT 0,
           created_at timestamptz NOT NULL DEFAULT now()
         );
         ALTER TABLE havre_meta OWNER TO ${role};
         INSERT INTO havre_meta (schema_version) VALUES (0) ON CONFLICT (singleton) DO NOTHING;`,
      );
    } finally {
      await inside.end().catch(() => {});
    }
  }

  /** Drops the database and role of `row` if they exist (idempotent). */
  async function runDropDdl(server: SealedServer, row: repo.TenantDatabaseRow): Promise<void> {
    const client = await admin.pool(server).connect();
    try {
      await client.query(`DROP DATABASE IF EXISTS ${dbIdent(row.database_name)} WITH (FORCE)`);
      await client.query(`DROP ROLE IF EXISTS ${roleIdent(row.role_name)}`);
    } finally {
      client.release();
    }
  }

  /** Creates one tenant database on `server` and leaves it `pooled`. */
  async function provision(server: SealedServer): Promise<repo.TenantDatabaseRow> {
    const names = newTenantDatabaseNames();
    const id = randomUUID();
    const now = clock.now();
    const row: repo.TenantDatabaseRow = {
      id,
      server_id: server.id,
      database_name: names.databaseName,
      role_name: names.roleName,
      role_password_sealed: secrets.seal(names.password, tenantPasswordContext(id)),
      state: 'creating',
      created_at: now,
      updated_at: now,
      assigned_at: null,
      dropped_at: null,
    };
    await repo.insertTenantDatabase(db, row); // committed before any DDL: a crash leaves a trace
    await runCreateDdl(server, row, names.password);
    const pooled = await repo.transition(db, id, ['creating'], 'pooled', clock.now());
    if (!pooled) throw new Error(`tenant database ${id} left the creating state while being created (swept?)`);
    return pooled;
  }

  /**
   * Cleans crash leftovers of `server`: `creating` rows older than CREATING_LEFTOVER_MS (whatever
   * exists is dropped, the row deleted) and interrupted drops (finished). Returns how many.
   */
  async function sweep(server: SealedServer): Promise<number> {
    const leftovers = await repo.findLeftovers(db, server.id, new Date(clock.now().getTime() - CREATING_LEFTOVER_MS));
    let cleaned = 0;
    for (const row of leftovers) {
      await runDropDdl(server, row);
      if (row.state === 'creating') {
        if (await repo.deleteTenantDatabase(db, row.id, 'creating')) cleaned++;
      } else if (await repo.transition(db, row.id, ['dropping'], 'dropped', clock.now())) cleaned++;
    }
    return cleaned;
  }

  /** Drops a tenant database (assigned or pooled): dropping → DDL → dropped. Returns false if it was in neither state. */
  async function drop(server: SealedServer, id: string): Promise<boolean> {
    const row = await repo.transition(db, id, ['assigned', 'pooled'], 'dropping', clock.now());
    if (!row) return false;
    await runDropDdl(server, row);
    await repo.transition(db, id, ['dropping'], 'dropped', clock.now());
    return true;
  }

  return { provision, sweep, drop, runCreateDdl, runDropDdl };
}

export type Provisioner = ReturnType<typeof createProvisioner>;
