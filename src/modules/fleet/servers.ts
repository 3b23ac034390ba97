/**
 * Database servers: registration (probe, harden, seal the admin URL), listing with load, and the
 * idempotent registration of the embedded per-region servers started by `havre start` (TEN-2).
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import { badRequest, conflict } from '../../lib/errors.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { AuditActorType } from '../audit/audit-tables.ts';
import { parseAdminUrl, serverAdminUrlContext, type AdminConnections } from './admin-connections.ts';
import * as repo from './fleet-repo.ts';
import { probeServer } from './server-checks.ts';

/** Default capacity of a server when the operator does not say. */
export const DEFAULT_MAX_TENANTS = 1_000;
const SERVER_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface ServerView {
  id: string;
  name: string;
  region: string;
  /** host:port only, never credentials. */
  address: string;
  status: 'active' | 'draining';
  maxTenants: number;
  assignedDatabases: number;
  pooledDatabases: number;
}

/** A newly registered server, with what the checks found worth saying (e.g. pg_dump missing). */
export interface AddedServerView extends ServerView {
  warnings: string[];
}

export interface ServerActor {
  type: AuditActorType;
  id?: string | null;
  ip?: string | null;
}

export interface AddServerInput {
  name?: string;
  region: string;
  adminUrl: string;
  maxTenants?: number;
}

/** The presenter: a whitelist of fields; the admin URL never leaves the service. */
export function presentServer(row: repo.ServerWithLoad): ServerView {
  return {
    id: row.id,
    name: row.name,
    region: row.region,
    address: row.address,
    status: row.status,
    maxTenants: row.max_tenants,
    assignedDatabases: row.assigned,
    pooledDatabases: row.pooled,
  };
}

export function assertRegion(config: Config, region: string): void {
  if (!config.tenants.regions.includes(region)) {
    throw badRequest('unknown_region', `Unknown region "${region}"; configured regions: ${config.tenants.regions.join(', ')}.`, { regions: [...config.tenants.regions] });
  }
}

function defaultName(region: string, address: string): string {
  return `${region}-${address}`.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+$/, '').slice(0, 63);
}

export function createServerService(deps: { db: Db; clock: Clock; secrets: SecretBox; config: Config; audit: AuditService; admin: AdminConnections }) {
  const { db, clock, secrets, config, audit } = deps;

  async function add(input: AddServerInput, actor: ServerActor = { type: 'system' }): Promise<AddedServerView> {
    assertRegion(config, input.region);
    const target = parseAdminUrl(input.adminUrl);
    if (!target) throw badRequest('invalid_server_url', 'The URL must look like postgres://user:password@host:5432/postgres.');
    const name = input.name ?? defaultName(input.region, target.address);
    if (!SERVER_NAME.test(name)) throw badRequest('invalid_server_name', 'A server name is 1-63 characters among a-z, 0-9 and "-", starting with a letter or digit.');
    const maxTenants = input.maxTenants ?? DEFAULT_MAX_TENANTS;
    if (!Number.isInteger(maxTenants) || maxTenants < 1 || maxTenants > 100_000) throw badRequest('invalid_max_tenants', 'maxTenants must be an integer between 1 and 100000.');
    if (await repo.findServerByName(db, name)) throw conflict('server_name_taken', `A server named "${name}" is already registered.`);
    if (await repo.findServerByAddress(db, target.address)) throw conflict('server_already_registered', `The server at ${target.address} is already registered.`);

    const probe = await probeServer(input.adminUrl);
    const id = randomUUID();
    const now = clock.now();
    try {
      await db.transaction().execute(async (trx) => {
        await repo.insertServer(trx, {
          id,
          name,
          region: input.region,
          admin_url_sealed: secrets.seal(input.adminUrl, serverAdminUrlContext(id)),
          address: target.address,
          max_tenants: maxTenants,
          status: 'active',
          server_version_num: probe.versionNum,
          created_at: now,
          updated_at: now,
        });
        await audit.record(
          {
            actorType: actor.type,
            actorId: actor.id ?? null,
            ip: actor.ip ?? null,
            action: 'server.added',
            subjectType: 'database_server',
            subjectId: id,
            data: { name, region: input.region, address: target.address, maxTenants, serverVersion: probe.versionNum },
          },
          trx,
        );
      });
    } catch (err) {
      // Two registrations racing: the unique constraints decide; answer like the checks above.
      if ((err as { code?: string }).code === '23505') throw conflict('server_already_registered', `A server named "${name}" or at ${target.address} is already registered.`);
      throw err;
    }
    const [row] = await repo.listServersWithLoad(db, { id });
    return { ...presentServer(row!), warnings: probe.warnings };
  }

  async function list(): Promise<ServerView[]> {
    return (await repo.listServersWithLoad(db)).map(presentServer);
  }

  /**
   * Registers each embedded server once (by name); on later starts only refreshes its URL when it
   * changed (e.g. another port), so `havre start` can call it every time.
   */
  async function ensureEmbedded(servers: { name: string; region: string; adminUrl: string }[]): Promise<void> {
    for (const s of servers) {
      const existing = await repo.findServerByName(db, s.name);
      if (!existing) {
        await add({ name: s.name, region: s.region, adminUrl: s.adminUrl }, { type: 'system' });
        continue;
      }
      const current = deps.admin.adminUrl(existing);
      if (current === s.adminUrl) continue;
      const target = parseAdminUrl(s.adminUrl);
      if (!target) throw badRequest('invalid_server_url', `Embedded server ${s.name}: invalid URL.`);
      const probe = await probeServer(s.adminUrl);
      await repo.updateServerConnection(db, existing.id, {
        admin_url_sealed: secrets.seal(s.adminUrl, serverAdminUrlContext(existing.id)),
        address: target.address,
        server_version_num: probe.versionNum,
        updated_at: clock.now(),
      });
    }
  }

  return { add, list, ensureEmbedded };
}

export type ServerService = ReturnType<typeof createServerService>;
