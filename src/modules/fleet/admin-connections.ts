/**
 * Connections with a server's admin credentials: used only to create and drop tenant databases and
 * roles, to probe and harden a server, and for readiness. One small `pg.Pool` per server, opened
 * lazily from the sealed admin URL (SEC-3: the clear URL lives only in memory).
 */
import pg from 'pg';
import type { SecretBox } from '../../lib/crypto.ts';

export interface SealedServer {
  id: string;
  admin_url_sealed: string;
}

export interface AdminConnections {
  /** The admin pool of `server` (kept while its sealed URL does not change). */
  pool(server: SealedServer): pg.Pool;
  /** The clear admin URL of `server`. */
  adminUrl(server: SealedServer): string;
  /** The admin URL of `server` pointed at another database of it. */
  adminUrlFor(server: SealedServer, database: string): string;
  /** Connection settings for a tenant database on `server`, as the tenant's own role. */
  tenantTarget(server: SealedServer, tenant: { databaseName: string; roleName: string; password: string }): pg.ClientConfig;
  closeAll(): Promise<void>;
}

export function serverAdminUrlContext(serverId: string): string {
  return `server:${serverId}`;
}

/** Parses and checks an admin URL; returns its display address (host:port, no credentials). */
export function parseAdminUrl(url: string): { address: string; host: string; port: number } | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') return null;
  if (!parsed.hostname || !parsed.username) return null;
  const port = parsed.port ? Number(parsed.port) : 5432;
  return { address: `${parsed.hostname}:${port}`, host: parsed.hostname, port };
}

export function createAdminConnections(deps: { secrets: SecretBox; max?: number }): AdminConnections {
  const pools = new Map<string, { sealed: string; pool: pg.Pool }>();
  const adminUrl = (server: SealedServer) => deps.secrets.open(server.admin_url_sealed, serverAdminUrlContext(server.id));
  return {
    adminUrl,
    pool(server) {
      const cached = pools.get(server.id);
      if (cached && cached.sealed === server.admin_url_sealed) return cached.pool;
      if (cached) void cached.pool.end().catch(() => {});
      const pool = new pg.Pool({
        connectionString: adminUrl(server),
        max: deps.max ?? 4,
        idleTimeoutMillis: 10_000,
        connectionTimeoutMillis: 5_000,
        allowExitOnIdle: true,
        application_name: 'havre-admin',
      });
      pool.on('error', () => {
        // An idle admin connection died (server restart): the pool drops it and reconnects.
      });
      pools.set(server.id, { sealed: server.admin_url_sealed, pool });
      return pool;
    },
    adminUrlFor(server, database) {
      const url = new URL(adminUrl(server));
      url.pathname = `/${database}`;
      return url.toString();
    },
    tenantTarget(server, tenant) {
      const url = new URL(adminUrl(server));
      // Host, port and TLS parameters come from the admin URL; the credentials are the tenant's.
      // (In the URL itself: pg lets a connection string override separate user/password fields.)
      url.username = tenant.roleName;
      url.password = tenant.password;
      url.pathname = `/${tenant.databaseName}`;
      return { connectionString: url.toString(), application_name: 'havre-tenant' };
    },
    async closeAll() {
      const list = [...pools.values()];
      pools.clear();
      await Promise.allSettled(list.map((p) => p.pool.end()));
    },
  };
}
