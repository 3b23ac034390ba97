/**
 * Scratch databases: short-lived databases on a registered server, created and dropped with the
 * server's admin credentials, where backups are restored to be verified (BKP-4). They never hold
 * a tenant; their names say when they were made (`havre_scratch_<unix seconds>_<hex>`), so a node
 * that dies mid-verification leaves one that `sweepScratch` drops once it is old.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { Db } from '../../db/db.ts';
import { unavailable } from '../../lib/errors.ts';
import type { AdminConnections } from './admin-connections.ts';
import * as repo from './fleet-repo.ts';

const SCRATCH = /^havre_scratch_(\d{10})_[0-9a-f]{12}$/;

export interface ScratchDatabase {
  serverId: string;
  serverName: string;
  /** Admin connection settings to the scratch database. */
  config: pg.ClientConfig;
  drop(): Promise<void>;
}

export function createScratchDatabases(deps: { db: Db; admin: AdminConnections }) {
  const { db, admin } = deps;

  async function dropByName(server: { id: string; admin_url_sealed: string }, name: string): Promise<void> {
    if (!SCRATCH.test(name)) throw new Error('not a scratch database');
    await admin.pool(server).query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }

  return {
    /**
     * Creates an empty scratch database on an active server, preferring one that is not
     * `avoidServerId` (a backup is verified away from its tenant's primary when possible).
     */
    async create(options: { avoidServerId?: string } = {}): Promise<ScratchDatabase> {
      const servers = await repo.listServersWithLoad(db, { activeOnly: true });
      if (servers.length === 0) throw unavailable('no_server', 'No database server is registered.');
      const ordered = [...servers.filter((s) => s.id !== options.avoidServerId), ...servers.filter((s) => s.id === options.avoidServerId)];
      const server = ordered[0]!;
      // Wall-clock time (how long ago a process made it), not the business clock.
      const name = `havre_scratch_${Math.floor(Date.now() / 1000)}_${randomBytes(6).toString('hex')}`;
      await admin.pool(server).query(`CREATE DATABASE ${name} TEMPLATE template0`);
      return {
        serverId: server.id,
        serverName: server.name,
        config: { connectionString: admin.adminUrlFor(server, name), application_name: 'havre-verify' },
        drop: () => dropByName(server, name),
      };
    },
    /** Drops scratch databases older than `olderThan` on every server (a verifier died); returns how many. */
    async sweep(olderThan: Date): Promise<number> {
      let dropped = 0;
      for (const server of await repo.listServersWithLoad(db, { activeOnly: true })) {
        const { rows } = await admin.pool(server).query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'havre\\_scratch\\_%'`);
        for (const { datname } of rows) {
          const m = SCRATCH.exec(datname);
          if (m && Number(m[1]) * 1000 < olderThan.getTime()) {
            await dropByName(server, datname);
            dropped++;
          }
        }
      }
      return dropped;
    },
  };
}

export type ScratchDatabases = ReturnType<typeof createScratchDatabases>;
