/**
 * Placement (TEN-2) and the warm pool.
 *
 * Placement: the least-loaded active server of the region (assigned databases / max_tenants),
 * among those with room left.
 *
 * Warm pool: each server keeps `warmPoolSize` ready databases (`pooled`). `acquire` claims one in
 * the caller's transaction (`FOR UPDATE SKIP LOCKED`: concurrent claims never block each other,
 * and a rollback leaves it pooled); with none ready, it creates one on the spot. Refills run in
 * the background on every node; a session advisory lock per server makes one node at a time
 * work on a server, so several nodes neither overshoot nor fight.
 */
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db, Trx } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { unavailable } from '../../lib/errors.ts';
import * as repo from './fleet-repo.ts';
import type { Provisioner } from './provisioner.ts';
import { assertRegion } from './servers.ts';

/** Arbitrary constant (int4): first key of the per-server advisory lock. */
const SERVER_LOCK_CLASS = 731_100;

export interface TenantDatabaseView {
  id: string;
  serverId: string;
  serverName: string;
  region: string;
  databaseName: string;
  roleName: string;
}

export interface RefillOptions {
  /** Pool size to reach (default: config.tenants.warmPoolSize). */
  target?: number;
  /** Databases created at once per server (default 2). */
  concurrency?: number;
}

function loadOf(s: repo.ServerWithLoad): number {
  return s.assigned / s.max_tenants;
}

/** Runs `task` over `count` items, `concurrency` at a time; returns how many succeeded, throws the first error at the end. */
async function runLimited(count: number, concurrency: number, task: () => Promise<unknown>): Promise<number> {
  let started = 0;
  let done = 0;
  let firstError: unknown = null;
  const worker = async () => {
    while (started < count && firstError === null) {
      started++;
      try {
        await task();
        done++;
      } catch (err) {
        firstError ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
  if (firstError !== null) throw firstError;
  return done;
}

export function createWarmPool(deps: { db: Db; clock: Clock; config: Config; logger: Logger; provisioner: Provisioner }) {
  const { db, clock, config, provisioner } = deps;
  let kick: () => void = () => {};

  /** The least-loaded active server of `region` with room left. */
  async function placeIn(region: string, executor: Db | Trx): Promise<repo.ServerWithLoad> {
    assertRegion(config, region);
    const servers = await repo.listServersWithLoad(executor, { region, activeOnly: true });
    if (servers.length === 0) throw unavailable('no_server_in_region', `No database server is registered in region "${region}".`);
    const withRoom = servers.filter((s) => s.assigned < s.max_tenants);
    if (withRoom.length === 0) throw unavailable('region_full', `Every database server of region "${region}" is full.`);
    withRoom.sort((a, b) => loadOf(a) - loadOf(b) || b.pooled - a.pooled || a.name.localeCompare(b.name));
    return withRoom[0]!;
  }

  function view(row: repo.TenantDatabaseRow, server: repo.ServerRow): TenantDatabaseView {
    return { id: row.id, serverId: server.id, serverName: server.name, region: server.region, databaseName: row.database_name, roleName: row.role_name };
  }

  async function acquire(region: string, trx: Trx): Promise<TenantDatabaseView> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = await placeIn(region, trx);
      let row = await repo.claimPooled(trx, server.id, clock.now());
      if (!row) {
        // Empty pool: create one now (committed on its own, outside the caller's transaction),
        // then claim it in the transaction. Another claimer may take it first: then try again.
        const created = await provisioner.provision(server);
        row = await repo.transition(trx, created.id, ['pooled'], 'assigned', clock.now());
      }
      if (row) {
        kick();
        return view(row, server);
      }
    }
    throw unavailable('no_database_available', `Could not get a tenant database in region "${region}"; try again.`);
  }

  /**
   * Runs `fn` holding the advisory lock of `serverId` on one control-plane connection; returns
   * null without running it when another node (or pass) holds the lock.
   */
  async function withServerLock<T>(serverId: string, fn: () => Promise<T>): Promise<T | null> {
    return db.connection().execute(async (conn) => {
      const { rows } = await sql<{ locked: boolean }>`SELECT pg_try_advisory_lock(${SERVER_LOCK_CLASS}, hashtext(${serverId})) AS locked`.execute(conn);
      if (!rows[0]?.locked) return null;
      try {
        return await fn();
      } finally {
        await sql`SELECT pg_advisory_unlock(${SERVER_LOCK_CLASS}, hashtext(${serverId}))`.execute(conn);
      }
    });
  }

  /** Tops up the pool of every active server (or one); returns how many databases were created. */
  async function refill(serverId?: string, options: RefillOptions = {}): Promise<number> {
    const target = options.target ?? config.tenants.warmPoolSize;
    let created = 0;
    for (const listed of await repo.listServersWithLoad(db, { id: serverId, activeOnly: true })) {
      created +=
        (await withServerLock(listed.id, async () => {
          const [s] = await repo.listServersWithLoad(db, { id: listed.id });
          if (!s) return 0;
          const room = s.max_tenants - s.assigned - s.pooled - s.creating;
          const need = Math.max(0, Math.min(target - s.pooled - s.creating, room));
          return runLimited(need, options.concurrency ?? 2, () => provisioner.provision(s));
        })) ?? 0;
    }
    return created;
  }

  /** Cleans crash leftovers on every server (or one); returns how many rows were cleaned. */
  async function sweep(serverId?: string): Promise<number> {
    let cleaned = 0;
    for (const s of await repo.listServersWithLoad(db, { id: serverId })) {
      cleaned += (await withServerLock(s.id, () => provisioner.sweep(s))) ?? 0;
    }
    return cleaned;
  }

  /**
   * Background maintenance of this node: sweep and refill every `intervalMs`, and shortly after
   * each acquisition. Returns the stopper (waits for the pass in progress).
   */
  function start(intervalMs = 5_000): () => Promise<void> {
    let running: Promise<void> | null = null;
    let again = false;
    let stopped = false;
    const pass = async () => {
      try {
        await sweep();
        await refill();
      } catch (err) {
        deps.logger.warn({ err }, 'warm pool maintenance failed');
      }
    };
    const run = () => {
      if (stopped) return;
      if (running) {
        again = true;
        return;
      }
      running = pass().finally(() => {
        running = null;
        if (again) {
          again = false;
          run();
        }
      });
    };
    const timer = setInterval(run, intervalMs);
    timer.unref();
    // After an acquisition the caller's transaction has not committed yet: look a little later.
    kick = () => setTimeout(run, 200).unref();
    run();
    return async () => {
      stopped = true;
      clearInterval(timer);
      kick = () => {};
      await running;
    };
  }

  return { acquire, refill, sweep, start, placeIn };
}

export type WarmPool = ReturnType<typeof createWarmPool>;
