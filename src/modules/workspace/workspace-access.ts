/**
 * The one path from a request to a tenant's workspace: who may enter, in which state, at which
 * schema version, and as which database role.
 *
 * 1. One control-plane query finds the tenant, its database, its schema version and the caller's
 *    role in the tenant's customer. Not a member: 404 `tenant_not_found` (TEN-1 at the API level,
 *    as for an id that does not exist). Role too low: 403 `role_required` (APP-3).
 * 2. The tenant must be serving (trial or active): a suspended tenant answers 423
 *    `tenant_suspended`, a cancelled one 409 `tenant_cancelled`, a destroyed one 410.
 * 3. A tenant below MIN_SERVED_SCHEMA_VERSION is upgraded first (the same locked, all-or-nothing
 *    upgrade the rollout uses).
 * 4. The work runs on a connection to the tenant's database AS THE TENANT'S ROLE: PostgreSQL itself
 *    keeps one tenant's request out of every other tenant's data (TEN-1). Writes run in one
 *    transaction.
 *
 * Operator staff have no path here: Havre's staff do not read customers' workspaces.
 */
import type pg from 'pg';
import { sql } from 'kysely';
import type { Db } from '../../db/db.ts';
import { AppError, conflict, forbidden, notFound, unavailable } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import type { MemberRole } from '../accounts/accounts-tables.ts';
import type { Principal } from '../accounts/authn.ts';
import type { TenantAccessFacts } from '../../http/auth-cache.ts';
import type { TtlCache } from '../../lib/ttl-cache.ts';

/** Who may read and write records (APP-3): every member role. */
export const RECORD_ROLES: readonly MemberRole[] = ['owner', 'administrator', 'collaborator'];
/** Who may change the workspace's settings: administrators and owners. */
export const SETTINGS_ROLES: readonly MemberRole[] = ['owner', 'administrator'];

export interface WorkspaceTarget {
  tenantId: string;
  customerId: string;
  tenantDatabaseId: string;
  role: MemberRole;
  schemaVersion: number;
  /** The caller (for author columns and audit). */
  userId: string;
  locale: 'fr' | 'en';
}

export interface WorkspaceAccessDeps {
  db: Db;
  /** (user, tenant) → access facts, cleared on every tenant or membership change of this node. */
  cache: TtlCache<TenantAccessFacts>;
  withTenant<T>(tenantDatabaseId: string, fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  /** Upgrades one tenant database to the latest schema (locked, idempotent); returns the version reached. */
  upgrade(tenantDatabaseId: string): Promise<number>;
  minSchemaVersion: number;
}

const tenantNotFound = () => notFound('tenant_not_found', 'No such tenant.');

type AccessRow = TenantAccessFacts;

function refuseUnlessServing(row: AccessRow): void {
  switch (row.state) {
    case 'trial':
    case 'active':
      return;
    case 'suspended':
      throw new AppError(423, 'tenant_suspended', 'This tenant is suspended: its workspace is closed until it is resumed.', { state: row.state });
    case 'cancelled':
      throw conflict('tenant_cancelled', 'This tenant is cancelled: its workspace is closed. The owner can still export or reactivate it during the grace period.', { state: row.state });
    case 'destroyed':
      throw new AppError(410, 'tenant_destroyed', 'This tenant was destroyed.', { state: row.state });
    default:
      throw unavailable('tenant_not_ready', 'This tenant is still being prepared; try again in a moment.');
  }
}

export function createWorkspaceAccess(deps: WorkspaceAccessDeps) {
  const { db } = deps;

  /** Steps 1–3 of the file comment; returns where to run the work. */
  async function enter(principal: Principal, tenantId: string, roles: readonly MemberRole[]): Promise<WorkspaceTarget> {
    if (!isUuid(tenantId)) throw tenantNotFound();
    const key = `${principal.userId}:${tenantId}`;
    const row = deps.cache.get(key) ?? (await lookup(principal.userId, tenantId));
    if (!row || !row.role) throw tenantNotFound();
    if (!roles.includes(row.role)) throw forbidden('role_required', `This needs one of the roles: ${roles.join(', ')}.`);
    refuseUnlessServing(row);
    if (!row.tenant_database_id) throw unavailable('tenant_not_ready', 'This tenant is still being prepared; try again in a moment.');
    let schemaVersion = row.schema_version ?? 0;
    if (schemaVersion < deps.minSchemaVersion) {
      schemaVersion = await deps.upgrade(row.tenant_database_id);
      deps.cache.delete(key);
    } else {
      deps.cache.set(key, row);
    }
    return {
      tenantId: row.tenant_id,
      customerId: row.customer_id,
      tenantDatabaseId: row.tenant_database_id,
      role: row.role,
      schemaVersion,
      userId: principal.userId,
      locale: principal.locale,
    };
  }

  /** The control-plane facts of one request, in one query. */
  async function lookup(userId: string, tenantId: string): Promise<AccessRow | undefined> {
    const { rows } = await sql<AccessRow>`
      SELECT t.id AS tenant_id, t.customer_id, t.state, t.tenant_database_id, d.schema_version, m.role
        FROM tenants t
        LEFT JOIN tenant_databases d ON d.id = t.tenant_database_id
        LEFT JOIN memberships m ON m.customer_id = t.customer_id AND m.user_id = ${userId}
       WHERE t.id = ${tenantId}`.execute(db);
    return rows[0];
  }

  return {
    enter,

    /** Runs `fn` on the tenant's database as its role (single statements, no transaction). */
    async read<T>(principal: Principal, tenantId: string, fn: (client: pg.PoolClient, target: WorkspaceTarget) => Promise<T>, roles: readonly MemberRole[] = RECORD_ROLES): Promise<T> {
      const target = await enter(principal, tenantId, roles);
      return deps.withTenant(target.tenantDatabaseId, (client) => fn(client, target));
    },

    /** Runs `fn` in one transaction on the tenant's database as its role; any error rolls it all back. */
    async write<T>(principal: Principal, tenantId: string, fn: (client: pg.PoolClient, target: WorkspaceTarget) => Promise<T>, roles: readonly MemberRole[] = RECORD_ROLES): Promise<T> {
      const target = await enter(principal, tenantId, roles);
      return deps.withTenant(target.tenantDatabaseId, async (client) => {
        await client.query('BEGIN');
        try {
          const result = await fn(client, target);
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      });
    },
  };
}

export type WorkspaceAccess = ReturnType<typeof createWorkspaceAccess>;
