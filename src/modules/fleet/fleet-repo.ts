/**
 * SQL of the fleet module, and nothing else. Every method takes an executor (the database or an
 * open transaction), so callers decide what commits together.
 */
import { sql } from 'kysely';
import type { Executor } from '../../db/db.ts';
import type { DatabaseServersTable, TenantDatabaseState, TenantDatabasesTable } from './fleet-tables.ts';

export type ServerRow = DatabaseServersTable;
export type TenantDatabaseRow = TenantDatabasesTable;

export interface ServerWithLoad extends ServerRow {
  assigned: number;
  pooled: number;
  /** Rows in `creating`: counted against the warm pool target, so two refills do not overshoot. */
  creating: number;
}

const loadColumns = sql<number>`count(*) FILTER (WHERE td.state = 'assigned')::int`;

/** Servers (optionally of one region / one id) with their assigned, pooled and creating counts. */
export async function listServersWithLoad(db: Executor, filter: { region?: string; id?: string; activeOnly?: boolean } = {}): Promise<ServerWithLoad[]> {
  let q = db
    .selectFrom('database_servers as s')
    .leftJoin('tenant_databases as td', 'td.server_id', 's.id')
    .selectAll('s')
    .select([
      loadColumns.as('assigned'),
      sql<number>`count(*) FILTER (WHERE td.state = 'pooled')::int`.as('pooled'),
      sql<number>`count(*) FILTER (WHERE td.state = 'creating')::int`.as('creating'),
    ])
    .groupBy('s.id')
    .orderBy('s.region')
    .orderBy('s.name');
  if (filter.region !== undefined) q = q.where('s.region', '=', filter.region);
  if (filter.id !== undefined) q = q.where('s.id', '=', filter.id);
  if (filter.activeOnly) q = q.where('s.status', '=', 'active');
  return q.execute();
}

export async function findServerByName(db: Executor, name: string): Promise<ServerRow | undefined> {
  return db.selectFrom('database_servers').selectAll().where('name', '=', name).executeTakeFirst();
}

export async function findServer(db: Executor, id: string): Promise<ServerRow | undefined> {
  return db.selectFrom('database_servers').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findServerByAddress(db: Executor, address: string): Promise<ServerRow | undefined> {
  return db.selectFrom('database_servers').selectAll().where('address', '=', address).executeTakeFirst();
}

export async function insertServer(db: Executor, row: ServerRow): Promise<void> {
  await db.insertInto('database_servers').values(row).execute();
}

export async function updateServerConnection(db: Executor, id: string, values: { admin_url_sealed: string; address: string; server_version_num: number; updated_at: Date }): Promise<void> {
  await db.updateTable('database_servers').set(values).where('id', '=', id).execute();
}

export async function insertTenantDatabase(db: Executor, row: TenantDatabaseRow): Promise<void> {
  await db.insertInto('tenant_databases').values(row).execute();
}

export async function findTenantDatabase(db: Executor, id: string): Promise<TenantDatabaseRow | undefined> {
  return db.selectFrom('tenant_databases').selectAll().where('id', '=', id).executeTakeFirst();
}

/**
 * Compare-and-set transition: moves the row to `to` only from one of `from`. Returns the row, or
 * undefined when it was not in an allowed state (the caller decides what that means).
 */
export async function transition(db: Executor, id: string, from: TenantDatabaseState[], to: TenantDatabaseState, now: Date): Promise<TenantDatabaseRow | undefined> {
  return db
    .updateTable('tenant_databases')
    .set({
      state: to,
      updated_at: now,
      ...(to === 'assigned' ? { assigned_at: now } : {}),
      ...(to === 'dropped' ? { dropped_at: now } : {}),
    })
    .where('id', '=', id)
    .where('state', 'in', from)
    .returningAll()
    .executeTakeFirst();
}

/**
 * Claims the oldest pooled database of `serverId`: rows locked by another claimer are skipped, so
 * concurrent acquisitions never wait on each other nor get the same database. Inside the caller's
 * transaction: a rollback leaves the row pooled.
 */
export async function claimPooled(db: Executor, serverId: string, now: Date): Promise<TenantDatabaseRow | undefined> {
  return db
    .updateTable('tenant_databases')
    .set({ state: 'assigned', assigned_at: now, updated_at: now })
    .where('id', '=', (eb) =>
      eb
        .selectFrom('tenant_databases')
        .select('id')
        .where('server_id', '=', serverId)
        .where('state', '=', 'pooled')
        .orderBy('created_at')
        .limit(1)
        .forUpdate()
        .skipLocked(),
    )
    .where('state', '=', 'pooled')
    .returningAll()
    .executeTakeFirst();
}

/** Rows stuck in `creating` (a crash mid-provisioning) or `dropping`, older than `before`. */
export async function findLeftovers(db: Executor, serverId: string, before: Date): Promise<TenantDatabaseRow[]> {
  return db
    .selectFrom('tenant_databases')
    .selectAll()
    .where('server_id', '=', serverId)
    .where('state', 'in', ['creating', 'dropping'])
    .where('updated_at', '<', before)
    .orderBy('created_at')
    .limit(100)
    .execute();
}

export async function deleteTenantDatabase(db: Executor, id: string, state: TenantDatabaseState): Promise<boolean> {
  const res = await db.deleteFrom('tenant_databases').where('id', '=', id).where('state', '=', state).executeTakeFirst();
  return res.numDeletedRows > 0n;
}

export async function countPooledByServer(db: Executor): Promise<{ name: string; region: string; pooled: number }[]> {
  return db
    .selectFrom('database_servers as s')
    .leftJoin('tenant_databases as td', (j) => j.onRef('td.server_id', '=', 's.id').on('td.state', '=', 'pooled'))
    .select(['s.name', 's.region', sql<number>`count(td.id)::int`.as('pooled')])
    .groupBy(['s.name', 's.region'])
    .execute();
}

/** A tenant database with what views and connections need of its server (sealed URL included). */
export async function findTenantDatabaseWithServer(db: Executor, id: string) {
  return db
    .selectFrom('tenant_databases as td')
    .innerJoin('database_servers as s', 's.id', 'td.server_id')
    .select(['td.id', 'td.state', 'td.database_name', 'td.role_name', 'td.role_password_sealed', 's.id as server_id', 's.name as server_name', 's.region', 's.admin_url_sealed'])
    .where('td.id', '=', id)
    .executeTakeFirst();
}

/**
 * Locks the row of an active server until the end of `trx` (FOR NO KEY UPDATE: it serialises
 * reservations on that server without blocking foreign-key checks). False when it is not active.
 */
export async function lockActiveServer(trx: Executor, id: string): Promise<boolean> {
  const { rows } = await sql<{ id: string }>`SELECT id FROM database_servers WHERE id = ${id} AND status = 'active' FOR NO KEY UPDATE`.execute(trx);
  return rows.length === 1;
}

/** Heartbeat of a provisioning in progress: keeps its `creating` row younger than the leftover cutoff. */
export async function touchCreating(db: Executor, id: string, now: Date): Promise<boolean> {
  const res = await db.updateTable('tenant_databases').set({ updated_at: now }).where('id', '=', id).where('state', '=', 'creating').executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/**
 * Takes a leftover for cleaning (compare-and-set on `updated_at`): of several sweepers (nodes),
 * exactly one wins a given row, and a provisioning that is still alive (it bumped `updated_at`)
 * is not taken.
 */
export async function leaseLeftover(db: Executor, row: TenantDatabaseRow, now: Date): Promise<boolean> {
  const res = await db
    .updateTable('tenant_databases')
    .set({ updated_at: now })
    .where('id', '=', row.id)
    .where('state', '=', row.state)
    .where('updated_at', '=', row.updated_at)
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

/** Records the workspace schema version a tenant database is now at (never lowers it: two upgraders may finish in any order). */
export async function recordSchemaVersion(db: Executor, id: string, version: number): Promise<void> {
  await db.updateTable('tenant_databases').set({ schema_version: version }).where('id', '=', id).where('schema_version', '<', version).execute();
}
