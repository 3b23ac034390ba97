/**
 * Composition root of the fleet module: database servers per region, tenant databases (with a
 * warm pool), and connections to tenant databases through each tenant's own role.
 *
 *   servers.ts          registration (probe, harden, sealed URL), listing, embedded servers
 *   provisioner.ts      create/drop a tenant database, crash-safe; sweeper of leftovers
 *   warm-pool.ts        placement (least loaded), acquire (claim only), ensureAvailable, background refill
 *   connections.ts      per-tenant pg pools with idle eviction and one global cap
 *   admin-connections.ts, server-checks.ts, sql-names.ts, fleet-repo.ts, fleet-routes.ts, fleet-metrics.ts
 */
import pg from 'pg';
import { roleIdent } from './sql-names.ts';

const PgClient = pg.Client;
import type { Logger } from 'pino';
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import type { Db, Trx } from '../../db/db.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import { notFound } from '../../lib/errors.ts';
import { createAdminConnections, type AdminConnections } from './admin-connections.ts';
import { createTenantConnections, type ConnectionStats, type TenantTarget } from './connections.ts';
import * as repo from './fleet-repo.ts';
import { registerFleetMetrics } from './fleet-metrics.ts';
import { createProvisioner, tenantPasswordContext, type Provisioner } from './provisioner.ts';
import { createServerService, type AddedServerView, type AddServerInput, type ServerActor, type ServerView } from './servers.ts';
import { readDatabaseUsage, type DatabaseUsage } from './database-usage.ts';
import { createScratchDatabases, type ScratchDatabases } from './scratch.ts';
import { createWarmPool, type RefillOptions, type TenantDatabaseView } from './warm-pool.ts';

export { isNoPooledDatabase, NO_POOLED_DATABASE } from './warm-pool.ts';

export type { AddedServerView, ServerView, TenantDatabaseView };

export interface FleetModule extends HavreModule {
  servers: {
    /** Registers an existing PostgreSQL server (never started by Havre) and hardens it. */
    add(input: AddServerInput, actor?: ServerActor): Promise<AddedServerView>;
    list(): Promise<ServerView[]>;
    /** Idempotent registration of the embedded servers started by `havre start`. */
    ensureEmbedded(list: { name: string; region: string; adminUrl: string }[]): Promise<void>;
  };
  databases: {
    /**
     * Claims a pooled tenant database in `region` inside the caller's transaction `trx` (`prefer`
     * first, then the least-loaded server that has one). It NEVER provisions (no DDL or network
     * inside `trx`): when none is ready it throws AppError 503 `no_pooled_database`
     * (`isNoPooledDatabase(err)`); the caller then rolls `trx` back, calls `ensureAvailable`
     * outside any transaction, and retries. If `trx` rolls back, the database stays pooled.
     * Also 400 `unknown_region` / 503 `no_server_in_region`.
     */
    acquire(region: string, trx: Trx, options?: { prefer?: string }): Promise<TenantDatabaseView>;
    /**
     * Provisions one pooled database on the least-loaded server of `region` with room (every
     * non-dropped database counts against max_tenants), outside any transaction; returns its id
     * (pass it as `prefer` to `acquire`). Must not be called inside a control-plane transaction.
     * 503 `region_full` / `no_server_in_region`.
     */
    ensureAvailable(region: string): Promise<string>;
    get(id: string): Promise<TenantDatabaseView | null>;
    /** Drops an assigned (or pooled) database and its role: dropping → dropped. False when it was in neither state. */
    drop(id: string): Promise<boolean>;
    /** Records the workspace schema version a database reached (never lowers it). */
    recordSchemaVersion(id: string, version: number): Promise<void>;
    /**
     * TEN-4: LOGIN off (cancelled tenant: its role may not connect, open sessions ended, this
     * node's pool closed) or back on (reactivation), through the server's admin connection.
     * Idempotent; false when the database is not live (dropped).
     */
    setLogin(id: string, login: boolean): Promise<boolean>;
  };
  connections: {
    /** Runs `fn` with a connection to the tenant database, as the tenant's own role. */
    withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
    /** Open connections now, overall and per tenant database. */
    stats(): ConnectionStats;
    /**
     * Connection settings to a tenant database as its own role (for pg_dump/pg_restore child
     * processes, which cannot use a pool). 404 when the database is not live.
     */
    target(tenantDatabaseId: string): Promise<pg.ClientConfig>;
    /**
     * Runs `fn` on a one-off connection to the tenant database made with the server's admin
     * credentials, then `SET ROLE` to the tenant's role: it works while the tenant role itself may
     * not log in (a cancelled tenant whose owner exports it during the grace period, TEN-4), and
     * still sees only what the tenant role sees.
     */
    withTenantAsAdmin<T>(tenantDatabaseId: string, fn: (client: pg.Client) => Promise<T>): Promise<T>;
    /** Closes the pool of one tenant database. */
    close(tenantDatabaseId: string): Promise<void>;
    /** Closes every tenant pool and every admin connection of this node. */
    closeAll(): Promise<void>;
  };
  /** Size and database time of every assigned tenant database (MET-1, MET-2; database-usage.ts). */
  usage(): Promise<DatabaseUsage[]>;
  /** Short-lived databases for backup verification (scratch.ts). */
  scratch: ScratchDatabases;
  pool: {
    /** Tops up the warm pool of every server (or one); returns how many databases were created. */
    refill(serverId?: string, options?: RefillOptions): Promise<number>;
    /** Cleans crash leftovers (old `creating` rows, interrupted drops); returns how many. */
    sweep(serverId?: string): Promise<number>;
  };
}

/** A live tenant database with its server and its decrypted password, else 404. */
async function openTenantDatabase(deps: { db: Db; secrets: SecretBox }, id: string) {
  const row = await repo.findTenantDatabaseWithServer(deps.db, id);
  if (!row || (row.state !== 'assigned' && row.state !== 'pooled')) throw notFound('tenant_database_not_found', 'No such tenant database.');
  const password = deps.secrets.open(row.role_password_sealed, tenantPasswordContext(row.id));
  return { row, server: { id: row.server_id, admin_url_sealed: row.admin_url_sealed }, password };
}

/** How the module finds a tenant database's connection settings (tenant role, decrypted password). */
export function tenantTargetResolver(deps: { db: Db; secrets: SecretBox; admin: AdminConnections }) {
  return async (id: string): Promise<TenantTarget> => {
    const { row, server, password } = await openTenantDatabase(deps, id);
    return { client: deps.admin.tenantTarget(server, { databaseName: row.database_name, roleName: row.role_name, password }) };
  };
}

/**
 * After an authentication failure as a tenant role (the tenant changed its own password with
 * ALTER ROLE): sets the sealed password back, as admin. Not audited (nothing changes in what Havre
 * holds), but logged.
 */
export function tenantPasswordRestorer(deps: { db: Db; secrets: SecretBox; provisioner: Provisioner; logger: Logger }) {
  return async (id: string): Promise<void> => {
    const { row, server, password } = await openTenantDatabase(deps, id);
    deps.logger.warn({ tenantDatabaseId: id, role: row.role_name }, 'tenant role password did not match the sealed one: restoring it');
    await deps.provisioner.restorePassword(server, row.role_name, password);
  };
}

export interface FleetOptions {
  /** Run as the tenant role on every new database before it is pooled (the workspace schema); returns its schema version. */
  initializeDatabase?: (client: pg.Client) => Promise<number>;
}

export function createFleetModule(core: Core, options: FleetOptions = {}): FleetModule {
  const { db, clock, secrets, config, logger } = core;
  const admin = createAdminConnections({ secrets });
  const servers = createServerService({ db, clock, secrets, config, audit: core.audit, admin });
  const provisioner = createProvisioner({
    db,
    clock,
    secrets,
    admin,
    roleConnectionLimit: config.tenants.roleConnectionLimit,
    logger,
    ...(options.initializeDatabase && { initialize: options.initializeDatabase }),
  });
  const warmPool = createWarmPool({ db, clock, config, logger, provisioner });
  const resolveTarget = tenantTargetResolver({ db, secrets, admin });
  const tenants = createTenantConnections(config.tenants.connections, resolveTarget, tenantPasswordRestorer({ db, secrets, provisioner, logger }));
  registerFleetMetrics(core.metrics.registry, { db, stats: () => tenants.stats() });

  const closeAll = async () => {
    await tenants.closeAll();
    await admin.closeAll();
  };

  return {
    routes: lazyRoutes(async () => (await import('./fleet-routes.ts')).fleetRoutes(servers)),
    // The stopper ends the warm-pool loop; connections are closed by `app.close` (closeAll), started or not.
    start: () => warmPool.start(),
    /** `fleet: true` when at least one registered server answers (or none is registered yet). */
    async readiness() {
      const list = await repo.listServersWithLoad(db, { activeOnly: true });
      if (list.length === 0) return { fleet: true };
      const answers = list.map((s) => admin.pool(s).query('SELECT 1').then(() => true));
      const fleet = await Promise.any(answers).catch(() => false);
      return { fleet };
    },
    servers,
    databases: {
      acquire: (region, trx, options) => warmPool.acquire(region, trx, options),
      ensureAvailable: (region) => warmPool.ensureAvailable(region),
      async get(id) {
        const row = await repo.findTenantDatabaseWithServer(db, id);
        if (!row) return null;
        return { id: row.id, serverId: row.server_id, serverName: row.server_name, region: row.region, databaseName: row.database_name, roleName: row.role_name };
      },
      async drop(id) {
        const row = await repo.findTenantDatabase(db, id);
        if (!row) return false;
        const server = await repo.findServer(db, row.server_id);
        await tenants.close(id);
        return provisioner.drop(server!, id);
      },
      recordSchemaVersion: (id, version) => repo.recordSchemaVersion(db, id, version),
      async setLogin(id, login) {
        const row = await repo.findTenantDatabaseWithServer(db, id);
        if (!row || (row.state !== 'assigned' && row.state !== 'pooled')) return false;
        await provisioner.setLogin({ id: row.server_id, admin_url_sealed: row.admin_url_sealed }, row.role_name, login);
        if (!login) await tenants.close(id);
        return true;
      },
    },
    connections: {
      withTenant: (id, fn) => tenants.withTenant(id, fn),
      stats: () => tenants.stats(),
      target: async (id) => (await resolveTarget(id)).client,
      async withTenantAsAdmin(id, fn) {
        const { row, server } = await openTenantDatabase({ db, secrets }, id);
        const client = new PgClient({ connectionString: admin.adminUrlFor(server, row.database_name), application_name: 'havre-admin' });
        await client.connect();
        try {
          await client.query(`SET ROLE ${roleIdent(row.role_name)}`);
          return await fn(client);
        } finally {
          await client.end().catch(() => {});
        }
      },
      close: (id) => tenants.close(id),
      closeAll,
    },
    usage: () => readDatabaseUsage({ db, admin }),
    scratch: createScratchDatabases({ db, admin }),
    pool: {
      refill: (serverId, options) => warmPool.refill(serverId, options),
      sweep: (serverId) => warmPool.sweep(serverId),
    },
  };
}
