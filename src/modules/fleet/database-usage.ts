/**
 * What each tenant database costs its server (MET-1, MET-2), read with the server's admin
 * credentials: its size (`pg_database_size`) and the time its backends spent executing statements
 * (`pg_stat_database.active_time`, PostgreSQL 14+, a counter in milliseconds since `stats_reset`).
 * One query per server for all its databases.
 */
import type { Db } from '../../db/db.ts';
import type { AdminConnections } from './admin-connections.ts';
import * as repo from './fleet-repo.ts';

export interface DatabaseUsage {
  tenantDatabaseId: string;
  databaseBytes: number;
  /** Cumulative active time (ms) since `statsReset` or since the server's statistics began. */
  activeTimeMs: number;
  statsReset: Date | null;
}

export async function readDatabaseUsage(deps: { db: Db; admin: AdminConnections }): Promise<DatabaseUsage[]> {
  const out: DatabaseUsage[] = [];
  for (const server of await repo.listServersWithLoad(deps.db, { activeOnly: true })) {
    const databases = await deps.db.selectFrom('tenant_databases').select(['id', 'database_name']).where('server_id', '=', server.id).where('state', '=', 'assigned').execute();
    if (databases.length === 0) continue;
    const { rows } = await deps.admin.pool(server).query<{ datname: string; bytes: string; active: number | null; reset: Date | null }>(
      `SELECT d.datname, pg_database_size(d.datname)::text AS bytes, s.active_time AS active, s.stats_reset AS reset
         FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
        WHERE d.datname = ANY($1)`,
      [databases.map((d) => d.database_name)],
    );
    const byName = new Map(databases.map((d) => [d.database_name, d.id]));
    for (const r of rows) out.push({ tenantDatabaseId: byName.get(r.datname)!, databaseBytes: Number(r.bytes), activeTimeMs: Number(r.active ?? 0), statsReset: r.reset });
  }
  return out;
}
