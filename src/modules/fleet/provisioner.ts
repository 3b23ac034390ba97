/**
 * Creating and dropping tenant databases (TEN-1), crash-safe.
 *
 * A tenant database is one database with an opaque name and one login role that has no other
 * right: no superuser, createdb, createrole, replication, bypassrls; a connection limit.
 *
 * Ownership (deliberately tight): the DATABASE object belongs to the server's admin role, not to
 * the tenant. The tenant role gets CONNECT, CREATE and TEMPORARY on it and owns schema `public`
 * (and everything it creates), so it owns all its data; but it cannot change database-level
 * properties (IS_TEMPLATE would make the database undroppable, CONNECTION LIMIT, ALTER DATABASE …
 * SET, RENAME) nor grant CONNECT on its database to PUBLIC or to another tenant. CONNECT is
 * revoked from PUBLIC. Inside the database, `pg_stat_activity`, `pg_stat_database` and
 * `pg_stat_get_activity()` are closed to PUBLIC (a stats side channel across tenants of one
 * server); the per-database counter functions (`pg_stat_get_db_*`) stay open, as PostgreSQL ships
 * them.
 *
 * Crash safety: a `creating` row is committed before any DDL (the reservation, taken under a row
 * lock of the server, so that concurrent reservations never exceed `max_tenants` nor the warm pool
 * target); every DDL step tolerates that it was already done; the row becomes `pooled` only when
 * the database is complete. While it works, a provisioning bumps its row's `updated_at` between
 * steps (a heartbeat): a `creating` row untouched for CREATING_LEFTOVER_MS is therefore truly
 * abandoned (a crash), and only then does the sweeper drop whatever exists of it and delete it.
 *
 * Drop: a tenant may have granted rights on its own objects to another tenant's role (GRANT …
 * TO r_other): those are shared dependencies that make DROP ROLE fail. Before dropping a role, the
 * databases that hold dependencies on it (`pg_shdepend`) get a DROP OWNED BY as admin.
 *
 * The server's admin connection is used to create (including the setup inside the new database),
 * to drop, and to restore a tenant role's password; everything else reaches the database as the
 * tenant role.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import type { AdminConnections, SealedServer } from './admin-connections.ts';
import * as repo from './fleet-repo.ts';
import { dbIdent, literal, newTenantDatabaseNames, roleIdent } from './sql-names.ts';

/**
 * A `creating` row whose heartbeat (`updated_at`) is older than this is a crash leftover: a live
 * provisioning bumps it between steps, and no single step takes minutes.
 */
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
  logger?: Logger;
  /**
   * CREATE DATABASE strategy. Default WAL_LOG (PostgreSQL 15's default): FILE_COPY forces two
   * checkpoints per database, which on a durable server was slower at p50 and had multi-second
   * stalls for every tenant of the server (bench/results/provisioning.md).
   */
  strategy?: 'FILE_COPY' | 'WAL_LOG';
  /**
   * Prepares a new database before it joins the warm pool, connected AS THE TENANT ROLE (so what
   * it creates belongs to the tenant): the workspace module installs its schema here, so a tenant
   * gets a ready workspace at creation. Returns the workspace schema version it left.
   */
  initialize?: (client: pg.Client) => Promise<number>;
}

export interface ProvisionOptions {
  /** Reserve only while the server has fewer than this many pooled + creating databases (refill). */
  poolTarget?: number;
}

const errCode = (err: unknown) => (err as { code?: string }).code;

/** Statistics views and functions closed to PUBLIC inside every tenant database. */
const CLOSED_STATS = ['TABLE pg_catalog.pg_stat_activity', 'TABLE pg_catalog.pg_stat_database', 'FUNCTION pg_catalog.pg_stat_get_activity(integer)'];

/** A client as admin on one database of `server`, with a search_path that a tenant's objects cannot shadow. */
async function adminClientOn(admin: AdminConnections, server: SealedServer, database: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: admin.adminUrlFor(server, database), application_name: 'havre-admin', options: '-c search_path=pg_catalog' });
  client.on('error', () => {});
  await client.connect();
  return client;
}

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

  /** The DDL of one tenant database; idempotent, so it can be re-run after a crash. `beat` runs between steps. */
  async function runCreateDdl(server: SealedServer, row: repo.TenantDatabaseRow, password: string, beat: () => Promise<void> = async () => {}): Promise<void> {
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
      // A non-superuser admin may hand schema `public` to the role (and drop what the role owns) only as a member of it.
      if (!(await isSuperuser(server, client))) await client.query(`GRANT ${role} TO CURRENT_USER`);
      await beat();
      try {
        // Owned by the admin role: the tenant must not be able to alter the database itself.
        await client.query(`CREATE DATABASE ${database} TEMPLATE template0 ENCODING 'UTF8' STRATEGY ${strategy}`);
      } catch (err) {
        if (errCode(err) !== '42P04') throw err; // duplicate_database
      }
      await client.query(`REVOKE ALL ON DATABASE ${database} FROM PUBLIC; GRANT CONNECT, CREATE, TEMPORARY ON DATABASE ${database} TO ${role}`);
    } finally {
      client.release();
    }
    await beat();

    // Inside the new database, as admin (the tenant role is NOINHERIT: it could not act as
    // pg_database_owner, the owner of `public` in a fresh database, anyway).
    const inside = await adminClientOn(admin, server, row.database_name);
    try {
      await inside.query(
        `ALTER SCHEMA public OWNER TO ${role};
         REVOKE ALL ON SCHEMA public FROM PUBLIC;
         CREATE TABLE IF NOT EXISTS public.havre_meta (
           singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
           schema_version int NOT NULL DEFAULT 0,
           created_at timestamptz NOT NULL DEFAULT now()
         );
         ALTER TABLE public.havre_meta OWNER TO ${role};
         INSERT INTO public.havre_meta (schema_version) VALUES (0) ON CONFLICT (singleton) DO NOTHING;`,
      );
      for (const object of CLOSED_STATS) {
        // Only the owner of the catalog (a superuser admin) can; a managed server keeps them open.
        await inside.query(`REVOKE ALL ON ${object} FROM PUBLIC`).catch((err: unknown) => {
          if (errCode(err) !== '42501') throw err;
          deps.logger?.warn({ server: server.id, object }, 'could not close a statistics view to PUBLIC (admin is not its owner)');
        });
      }
    } finally {
      await inside.end().catch(() => {});
    }
  }

  /** Runs `initialize` on a connection as the tenant role (idempotent on its side: re-run after a crash). */
  async function initializeAsTenant(server: SealedServer, row: repo.TenantDatabaseRow, password: string, initialize: (client: pg.Client) => Promise<number>): Promise<number> {
    const client = new pg.Client({ ...admin.tenantTarget(server, { databaseName: row.database_name, roleName: row.role_name, password }), application_name: 'havre-initialize' });
    client.on('error', () => {});
    await client.connect();
    try {
      return await initialize(client);
    } finally {
      await client.end().catch(() => {});
    }
  }

  /**
   * Revokes/drops what `role` holds in every database that has a shared dependency on it (e.g.
   * another tenant granted it SELECT on a table), so that DROP ROLE can succeed.
   */
  async function dropOwnedEverywhere(server: SealedServer, client: pg.PoolClient, roleName: string): Promise<void> {
    const role = roleIdent(roleName);
    const { rows } = await client.query<{ dbid: number; datname: string | null; here: boolean }>(
      `SELECT DISTINCT s.dbid, d.datname, d.datname = current_database() AS here
         FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
      [roleName],
    );
    for (const dep of rows) {
      if (dep.dbid === 0 || dep.here) {
        await client.query(`DROP OWNED BY ${role}`); // shared objects (grants on databases) are handled from any database
        continue;
      }
      if (dep.datname === null) continue;
      const other = await adminClientOn(admin, server, dep.datname);
      try {
        await other.query(`DROP OWNED BY ${role}`);
      } finally {
        await other.end().catch(() => {});
      }
    }
  }

  /** Drops the database and role of `row` if they exist (idempotent). */
  async function runDropDdl(server: SealedServer, row: repo.TenantDatabaseRow): Promise<void> {
    const database = dbIdent(row.database_name);
    const role = roleIdent(row.role_name);
    const client = await admin.pool(server).connect();
    try {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [row.database_name]);
      if (exists.rowCount === 1) {
        // Defensive: whatever was set on it (a template cannot be dropped), undo it first.
        await client.query(`ALTER DATABASE ${database} IS_TEMPLATE false`);
        await client.query(`ALTER DATABASE ${database} ALLOW_CONNECTIONS true`);
        await client.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
      }
      const roleExists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [row.role_name]);
      if (roleExists.rowCount === 1) {
        await dropOwnedEverywhere(server, client, row.role_name);
        await client.query(`DROP ROLE IF EXISTS ${role}`);
      }
    } finally {
      client.release();
    }
  }

  /**
   * Commits the `creating` row of a new database on `server`, under the server's row lock: null
   * (nothing reserved) when the server is not active, is full (every non-dropped database counts
   * against `max_tenants`, pooled and creating included) or, with `poolTarget`, has enough.
   */
  async function reserve(server: SealedServer, options: ProvisionOptions): Promise<{ row: repo.TenantDatabaseRow; password: string } | null> {
    return db.transaction().execute(async (trx) => {
      if (!(await repo.lockActiveServer(trx, server.id))) return null;
      const [s] = await repo.listServersWithLoad(trx, { id: server.id });
      if (!s || s.assigned + s.pooled + s.creating >= s.max_tenants) return null;
      if (options.poolTarget !== undefined && s.pooled + s.creating >= options.poolTarget) return null;
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
        schema_version: 0,
      };
      await repo.insertTenantDatabase(trx, row);
      return { row, password: names.password };
    });
  }

  /** Creates one tenant database on `server` and leaves it `pooled`; null when there is no room (see reserve). */
  async function provision(server: SealedServer, options: ProvisionOptions = {}): Promise<repo.TenantDatabaseRow | null> {
    const reserved = await reserve(server, options); // committed before any DDL: a crash leaves a trace
    if (!reserved) return null;
    const { row } = reserved;
    const beat = async () => {
      if (!(await repo.touchCreating(db, row.id, clock.now()))) throw new Error(`tenant database ${row.id} left the creating state while being created (swept?)`);
    };
    await runCreateDdl(server, row, reserved.password, beat);
    if (deps.initialize) {
      await beat();
      const version = await initializeAsTenant(server, row, reserved.password, deps.initialize);
      await repo.recordSchemaVersion(db, row.id, version);
    }
    const pooled = await repo.transition(db, row.id, ['creating'], 'pooled', clock.now());
    if (!pooled) throw new Error(`tenant database ${row.id} left the creating state while being created (swept?)`);
    return pooled;
  }

  /**
   * Cleans crash leftovers of `server`: `creating` rows whose heartbeat is older than
   * CREATING_LEFTOVER_MS (whatever exists is dropped, the row deleted) and interrupted drops
   * (finished). Each row is leased first (one sweeper per row across nodes); a row that fails is
   * logged and left for the next pass, and never stops the others. Returns how many were cleaned.
   */
  async function sweep(server: SealedServer): Promise<number> {
    const leftovers = await repo.findLeftovers(db, server.id, new Date(clock.now().getTime() - CREATING_LEFTOVER_MS));
    let cleaned = 0;
    for (const row of leftovers) {
      try {
        if (!(await repo.leaseLeftover(db, row, clock.now()))) continue;
        await runDropDdl(server, row);
        if (row.state === 'creating') {
          if (await repo.deleteTenantDatabase(db, row.id, 'creating')) cleaned++;
        } else if (await repo.transition(db, row.id, ['dropping'], 'dropped', clock.now())) cleaned++;
      } catch (err) {
        deps.logger?.error({ err, tenantDatabaseId: row.id, server: server.id }, 'could not clean a tenant database leftover; will retry');
      }
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

  /** Sets the tenant role's password back to the sealed one (a tenant changed it with ALTER ROLE). */
  async function restorePassword(server: SealedServer, roleName: string, password: string): Promise<void> {
    const client = await admin.pool(server).connect();
    try {
      await client.query(`ALTER ROLE ${roleIdent(roleName)} PASSWORD ${literal(client, scramVerifier(password))}`);
    } finally {
      client.release();
    }
  }

  /**
   * TEN-4: turns the tenant role's LOGIN off (a cancelled tenant: nobody connects, and its open
   * sessions are ended — NOLOGIN alone only refuses new ones) or back on (reactivation).
   * Idempotent. Ending sessions needs the admin to be allowed to signal them; when it is not, the
   * failure is logged and the sessions end with their pools (closed by the caller).
   */
  async function setLogin(server: SealedServer, roleName: string, login: boolean): Promise<void> {
    const client = await admin.pool(server).connect();
    try {
      await client.query(`ALTER ROLE ${roleIdent(roleName)} ${login ? 'LOGIN' : 'NOLOGIN'}`);
      if (!login) {
        await client
          .query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()', [roleName])
          .catch((err: unknown) => deps.logger?.warn({ err, role: roleName }, 'could not end the sessions of a cancelled tenant role'));
      }
    } finally {
      client.release();
    }
  }

  return { provision, sweep, drop, runCreateDdl, runDropDdl, restorePassword, setLogin };
}

export type Provisioner = ReturnType<typeof createProvisioner>;
