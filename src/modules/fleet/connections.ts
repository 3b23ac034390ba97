/**
 * Connections to tenant databases, always as the tenant's own role (TEN-1), sized so that one
 * server can host 1,000 tenants and more without running out of connections:
 *
 * - one `pg.Pool` per tenant database, opened on first use, at most `perTenantMax` clients, each
 *   idle client closed after `idleMs`, and the empty pool itself dropped after `idleMs`;
 * - ONE global cap `globalMax` on the connections open across all pools: every physical
 *   connection needs a slot from a gate before it connects and gives it back only once its socket
 *   is closed (so the server never sees more than `globalMax` tenant backends from this node).
 *   At the cap, an idle client of another pool (least recently used first) is closed to free a
 *   slot; with none idle, the request waits, and after `acquireTimeoutMs` fails with 503
 *   `tenant_connections_exhausted`.
 */
import pg from 'pg';
import { unavailable } from '../../lib/errors.ts';

export interface TenantTarget {
  /** pg client settings with the tenant role's credentials. */
  client: pg.ClientConfig;
}

export interface ConnectionLimits {
  perTenantMax: number;
  globalMax: number;
  idleMs: number;
  /** How long a request may wait for a free slot at the global cap. */
  acquireTimeoutMs?: number;
}

export interface ConnectionStats {
  /** Open (or opening) connections across all tenant pools. */
  total: number;
  /** Tenant pools currently kept. */
  pools: number;
  idle: number;
  /** Requests waiting for a slot at the global cap. */
  waiting: number;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** Counting semaphore over physical connections. */
function createGate(max: number, timeoutMs: number, onWait: () => void) {
  let open = 0;
  const waiters: Waiter[] = [];
  return {
    get open() {
      return open;
    },
    get waiting() {
      return waiters.length;
    },
    /** Resolves when the caller may open one connection. */
    acquire(): Promise<void> {
      if (open < max) {
        open++;
        return Promise.resolve();
      }
      return new Promise<void>((resolve, reject) => {
        const waiter: Waiter = {
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.splice(waiters.indexOf(waiter), 1);
            reject(unavailable('tenant_connections_exhausted', 'All tenant database connections are in use; try again in a moment.'));
          }, timeoutMs),
        };
        waiters.push(waiter);
        onWait();
      });
    },
    /** A connection is closed: its slot goes to the first waiter, or back to the gate. */
    release(): void {
      const next = waiters.shift();
      if (next) {
        clearTimeout(next.timer);
        next.resolve();
      } else {
        open--;
      }
    },
  };
}

interface Entry {
  pool: pg.Pool;
  /** withTenant calls in progress on this pool. */
  active: number;
  lastUsed: number;
}

/**
 * `restorePassword`: called once when connecting as a tenant role fails authentication (SQLSTATE
 * 28P01: the tenant changed its own password); the connection is then retried once.
 */
export function createTenantConnections(
  limits: ConnectionLimits,
  resolveTarget: (tenantDatabaseId: string) => Promise<TenantTarget>,
  restorePassword?: (tenantDatabaseId: string) => Promise<void>,
) {
  // At the cap, each new waiter makes an idle client of another pool close (see pump).
  const gate = createGate(limits.globalMax, limits.acquireTimeoutMs ?? 10_000, () => setImmediate(pump));
  /** Insertion order = least recently used first (an entry is moved to the end on each use). */
  const entries = new Map<string, Entry>();
  const opening = new Map<string, Promise<Entry>>();
  let evicting = 0;

  /** A pg Client that takes a gate slot before connecting and gives it back when its socket closes. */
  class GatedClient extends pg.Client {
    #holdsSlot = false;
    evicted = false;

    #releaseSlot(): void {
      if (!this.#holdsSlot) return;
      this.#holdsSlot = false;
      if (this.evicted) evicting--;
      gate.release();
    }

    // pg-pool calls connect(callback); the promise form is not used on pooled clients.
    override connect(): Promise<pg.Client>;
    override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
    override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
      const done = (callback ?? (() => {})) as (err: Error | null) => void;
      gate.acquire().then(
        () => {
          this.#holdsSlot = true;
          this.once('end', () => this.#releaseSlot());
          super.connect((err: Error) => {
            if (err) this.#releaseSlot();
            done(err ?? null);
          });
        },
        (err: Error) => done(err),
      );
    }
  }

  /**
   * Closes the longest-idle client of the least recently used pool that has one. pg-pool has no
   * public "close one idle client": we read its idle list and raise an error on that client, which
   * is pg-pool's own path for an idle client that failed (removed from the pool at once, then ended).
   */
  function evictOneIdle(): boolean {
    for (const entry of entries.values()) {
      if (entry.pool.idleCount === 0) continue;
      const idle = (entry.pool as unknown as { _idle?: { client: GatedClient }[] })._idle;
      const client = idle?.[0]?.client;
      if (!client) continue;
      client.evicted = true;
      client.emit('error', new Error('closed to stay under the global tenant connection cap'));
      return true;
    }
    return false;
  }

  /** While requests wait at the cap, free slots held by idle clients. */
  function pump(): void {
    while (gate.waiting > evicting && evictOneIdle()) evicting++;
  }

  async function openEntry(id: string): Promise<Entry> {
    const target = await resolveTarget(id);
    const pool = new pg.Pool({
      ...target.client,
      max: limits.perTenantMax,
      idleTimeoutMillis: limits.idleMs,
      allowExitOnIdle: true,
      Client: GatedClient as unknown as new () => pg.ClientBase,
    });
    pool.on('error', () => {
      // An idle client lost its connection: pg-pool drops it; its slot is freed on 'end'.
    });
    pool.on('release', () => {
      if (gate.waiting > evicting) setImmediate(pump);
    });
    const entry: Entry = { pool, active: 0, lastUsed: Date.now() };
    entries.set(id, entry);
    return entry;
  }

  async function getEntry(id: string): Promise<Entry> {
    const existing = entries.get(id);
    if (existing) {
      entries.delete(id);
      entries.set(id, existing); // most recently used goes last
      return existing;
    }
    let pending = opening.get(id);
    if (!pending) {
      pending = openEntry(id).finally(() => opening.delete(id));
      opening.set(id, pending);
    }
    return pending;
  }

  /** Drops pools that have had no connection and no use for `idleMs`. */
  function dropIdlePools(): void {
    const cutoff = Date.now() - limits.idleMs;
    for (const [id, entry] of entries) {
      if (entry.active === 0 && entry.pool.totalCount === 0 && entry.lastUsed < cutoff) {
        entries.delete(id);
        void entry.pool.end().catch(() => {});
      }
    }
  }
  const sweeper = setInterval(dropIdlePools, Math.max(1_000, limits.idleMs));
  sweeper.unref();

  return {
    async withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
      const entry = await getEntry(tenantDatabaseId);
      entry.active++;
      entry.lastUsed = Date.now();
      try {
        let client: pg.PoolClient;
        try {
          client = await entry.pool.connect();
        } catch (err) {
          if ((err as { code?: string }).code !== '28P01' || !restorePassword) throw err;
          await restorePassword(tenantDatabaseId);
          client = await entry.pool.connect();
        }
        try {
          const result = await fn(client);
          client.release();
          return result;
        } catch (err) {
          // The connection may be mid-transaction or broken: close it rather than reuse it.
          client.release(true);
          throw err;
        }
      } finally {
        entry.active--;
        entry.lastUsed = Date.now();
      }
    },

    stats(): ConnectionStats {
      let idle = 0;
      for (const e of entries.values()) idle += e.pool.idleCount;
      return { total: gate.open, pools: entries.size, idle, waiting: gate.waiting };
    },

    /** Closes the pool of one tenant database (before it is dropped). */
    async close(tenantDatabaseId: string): Promise<void> {
      const entry = entries.get(tenantDatabaseId);
      if (!entry) return;
      entries.delete(tenantDatabaseId);
      await entry.pool.end();
    },

    async closeAll(): Promise<void> {
      const list = [...entries.values()];
      entries.clear();
      await Promise.allSettled(list.map((e) => e.pool.end()));
    },
  };
}

export type TenantConnections = ReturnType<typeof createTenantConnections>;
