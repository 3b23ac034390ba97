/**
 * Placement (TEN-2) and the warm pool.
 *
 * Placement: the least-loaded active server of the region (assigned databases / max_tenants),
 * among those with room left (every non-dropped database counts against max_tenants: assigned,
 * pooled and creating, so a claim can never exceed it).
 *
 * No provisioning (network, DDL) ever happens inside a caller's transaction. `acquire` only claims
 * a `pooled` database in the caller's transaction (`FOR UPDATE SKIP LOCKED`: concurrent claims
 * never block each other, and a rollback leaves it pooled); with none ready it throws the typed
 * 503 `no_pooled_database`, and the caller rolls back, calls `ensureAvailable` (which provisions
 * one, outside any transaction) and retries. Refills run in the background on every node; every
 * database is reserved under a row lock of its server (see provisioner.ts), so several nodes never
 * overshoot the pool target nor max_tenants, and no control-plane connection is pinned while DDL
 * runs.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db, Trx } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { AppError, unavailable } from '../../lib/errors.ts';
import * as repo from './fleet-repo.ts';
import type { Provisioner } from './provisioner.ts';
import { assertRegion } from './servers.ts';

export const NO_POOLED_DATABASE = 'no_pooled_database';

/** True for the error of `acquire` when no pooled database is ready (call `ensureAvailable`, then retry). */
export function isNoPooledDatabase(err: unknown): boolean {
  return err instanceof AppError && err.code === NO_POOLED_DATABASE;
}

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

/** Placement order: least loaded first; then the one with more ready databases; then by name (stable). */
function byLoad(a: repo.ServerWithLoad, b: repo.ServerWithLoad): number {
  return loadOf(a) - loadOf(b) || b.pooled - a.pooled || a.name.localeCompare(b.name);
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
    const withRoom = servers.filter((s) => s.assigned + s.pooled + s.creating < s.max_tenants);
    if (withRoom.length === 0) throw unavailable('region_full', `Every database server of region "${region}" is full.`);
    withRoom.sort(byLoad);
    return withRoom[0]!;
  }

  function view(row: repo.TenantDatabaseRow, server: repo.ServerRow): TenantDatabaseView {
    return { id: row.id, serverId: server.id, serverName: server.name, region: server.region, databaseName: row.database_name, roleName: row.role_name };
  }

  /**
   * Claims a pooled database of `region` in `trx` (`prefer` first, e.g. the one `ensureAvailable`
   * just made; then the least-loaded server first). Never provisions.
   */
  async function acquire(region: string, trx: Trx, options: { prefer?: string } = {}): Promise<TenantDatabaseView> {
    assertRegion(config, region);
    const servers = await repo.listServersWithLoad(trx, { region, activeOnly: true });
    if (servers.length === 0) throw unavailable('no_server_in_region', `No database server is registered in region "${region}".`);
    if (options.prefer) {
      const preferred = await repo.findTenantDatabase(trx, options.prefer);
      const server = preferred && servers.find((s) => s.id === preferred.server_id);
      const row = server && (await repo.transition(trx, preferred.id, ['pooled'], 'assigned', clock.now()));
      if (row && server) {
        kick();
        return view(row, server);
      }
    }
    servers.sort(byLoad);
    for (const server of servers) {
      if (server.pooled === 0) continue;
      const row = await repo.claimPooled(trx, server.id, clock.now());
      if (row) {
        kick();
        return view(row, server);
      }
    }
    kick();
    throw new AppError(503, NO_POOLED_DATABASE, `No tenant database is ready in region "${region}"; try again.`);
  }

  /**
   * Provisions one pooled database on the least-loaded server of `region` that has room, outside
   * any transaction; returns its id. 503 `region_full` / `no_server_in_region`.
   */
  async function ensureAvailable(region: string): Promise<string> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = await placeIn(region, db);
      const created = await provisioner.provision(server);
      if (created) return created.id;
      // Another reservation took the last room of that server since the listing: place again.
    }
    throw unavailable('region_full', `Every database server of region "${region}" is full.`);
  }

  /** Tops up the pool of every active server (or one); returns how many databases were created. */
  async function refill(serverId?: string, options: RefillOptions = {}): Promise<number> {
    const target = options.target ?? config.tenants.warmPoolSize;
    let created = 0;
    for (const listed of await repo.listServersWithLoad(db, { id: serverId, activeOnly: true })) {
      const room = listed.max_tenants - listed.assigned - listed.pooled - listed.creating;
      const need = Math.max(0, Math.min(target - listed.pooled - listed.creating, room));
      // Each provision re-checks the target and the room under the server's row lock (several nodes).
      created += await runLimited(need, options.concurrency ?? 2, async () => ((await provisioner.provision(listed, { poolTarget: target })) ? 1 : 0));
    }
    return created;
  }

  /** Cleans crash leftovers on every server (or one); a server that fails is logged and does not stop the others. */
  async function sweep(serverId?: string): Promise<number> {
    let cleaned = 0;
    for (const s of await repo.listServersWithLoad(db, { id: serverId })) {
      try {
        cleaned += await provisioner.sweep(s);
      } catch (err) {
        deps.logger.error({ err, server: s.id }, 'sweeping tenant database leftovers failed on a server');
      }
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
      // Separate: a failing sweep must never stop the refill (nor the other way round).
      try {
        await sweep();
      } catch (err) {
        deps.logger.warn({ err }, 'warm pool sweep failed');
      }
      try {
        await refill();
      } catch (err) {
        deps.logger.warn({ err }, 'warm pool refill failed');
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

  return { acquire, ensureAvailable, refill, sweep, start, placeIn };
}

export type WarmPool = ReturnType<typeof createWarmPool>;
