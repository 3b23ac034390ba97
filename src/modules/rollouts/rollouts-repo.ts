/**
 * SQL of the rollouts module, and nothing else. Every method takes an optional executor (the
 * database or an open transaction), so the service decides what commits together.
 *
 * Reads join the fleet's `tenant_databases` and the tenants/accounts tables (read-only: those
 * modules own them) so that one query answers a list instead of one call per tenant.
 */
import { sql, type Selectable } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { TenantDatabaseState } from '../fleet/fleet-tables.ts';
import type { Locale } from '../accounts/accounts-tables.ts';
import type { TenantState } from '../tenants/tenant-states.ts';
import type { RolloutItemsTable, RolloutsTable, RolloutState, SecurityDeferralsTable, WorkspaceReleasesTable } from './rollouts-tables.ts';

export type ReleaseRow = Selectable<WorkspaceReleasesTable>;
export type RolloutRow = Selectable<RolloutsTable>;
export type ItemRow = Selectable<RolloutItemsTable>;
export type DeferralRow = Selectable<SecurityDeferralsTable>;

/** A tenant database below a target version, with its tenant when it has one. */
export interface EligibleDatabase {
  id: string;
  state: TenantDatabaseState;
  schema_version: number;
  tenant_id: string | null;
  tenant_name: string | null;
  customer_id: string | null;
}

export interface ItemCounts {
  total: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  deferred: number;
  skipped: number;
  /** Pending items still inside their maintenance notice period. */
  waiting: number;
}

/** An item with what a report line needs of its database and tenant. */
export interface ItemWithTenant extends ItemRow {
  tenant_id: string | null;
  tenant_name: string | null;
}

/** One tenant of a release report: its database's version and what the rollouts did to it. */
export interface ReportTenantRow {
  tenant_id: string;
  tenant_name: string;
  customer_id: string;
  tenant_state: TenantState;
  tenant_database_id: string;
  schema_version: number;
  /** First time a rollout took its database from below to at/above the version. */
  upgraded_at: Date | null;
  /** The latest item of a rollout targeting the version or above. */
  last_item_state: ItemRow['state'] | null;
  last_item_error: string | null;
}

const deferralColumns = ['id', 'tenant_id', 'release_version', 'reference', sql<string | null>`until::text`.as('until'), 'recorded_by_type', 'recorded_by_id', 'recorded_at'] as const;

/** Condition (SQL) for an item a worker may take now: pending and due, or running under an expired lease. */
const ready = (now: Date) => sql<boolean>`(
  (state = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ${now}) AND (not_before IS NULL OR not_before <= ${now}))
  OR (state = 'running' AND leased_until < ${now}))`;

export interface ItemKey {
  rolloutId: string;
  tenantDatabaseId: string;
}

/** Compare-and-set on an item `workerId` holds (running, its lease): false when it no longer holds it. */
async function updateHeld(trx: Executor, key: ItemKey, workerId: string, values: Partial<ItemRow>): Promise<boolean> {
  const res = await trx
    .updateTable('rollout_items')
    .set(values)
    .where('rollout_id', '=', key.rolloutId)
    .where('tenant_database_id', '=', key.tenantDatabaseId)
    .where('state', '=', 'running')
    .where('worker_id', '=', workerId)
    .executeTakeFirst();
  return res.numUpdatedRows > 0n;
}

export function createRolloutsRepo(db: Db) {
  return {
    /**
     * Records the release of `version` if new, else raises its security flag (never lowers it)
     * and moves its release date earlier when an earlier one is given (never later: that would
     * move a SEC-5 deadline away).
     */
    async upsertRelease(input: { version: number; now: Date; releasedAt?: Date; security: boolean }, trx: Executor = db): Promise<ReleaseRow> {
      const releasedAt = input.releasedAt ?? input.now;
      return trx
        .insertInto('workspace_releases')
        .values({
          version: input.version,
          released_at: releasedAt,
          security: input.security,
          security_marked_at: input.security ? input.now : null,
          created_at: input.now,
          updated_at: input.now,
        })
        .onConflict((oc) =>
          oc.column('version').doUpdateSet({
            security: sql<boolean>`workspace_releases.security OR excluded.security`,
            security_marked_at: sql<Date | null>`COALESCE(workspace_releases.security_marked_at, excluded.security_marked_at)`,
            released_at: input.releasedAt ? sql<Date>`LEAST(workspace_releases.released_at, excluded.released_at)` : sql<Date>`workspace_releases.released_at`,
            updated_at: input.now,
          }),
        )
        .returningAll()
        .executeTakeFirstOrThrow();
    },

    async findRelease(version: number, trx: Executor = db): Promise<ReleaseRow | undefined> {
      return trx.selectFrom('workspace_releases').selectAll().where('version', '=', version).executeTakeFirst();
    },

    /** Inserts a rollout; undefined when another one is already running for the same target (it waits for a concurrent creator's commit). */
    async insertRollout(row: RolloutRow, trx: Executor = db): Promise<RolloutRow | undefined> {
      return trx
        .insertInto('rollouts')
        .values(row)
        .onConflict((oc) => oc.column('target_version').where('state', '=', 'running').doNothing())
        .returningAll()
        .executeTakeFirst();
    },

    async findRollout(id: string, trx: Executor = db): Promise<RolloutRow | undefined> {
      return trx.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async findRunning(targetVersion: number, trx: Executor = db): Promise<RolloutRow | undefined> {
      return trx.selectFrom('rollouts').selectAll().where('target_version', '=', targetVersion).where('state', '=', 'running').executeTakeFirst();
    },

    async listRollouts(options: { limit: number; state?: RolloutState }, trx: Executor = db): Promise<RolloutRow[]> {
      let q = trx.selectFrom('rollouts').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit);
      if (options.state) q = q.where('state', '=', options.state);
      return q.execute();
    },

    /**
     * Live tenant databases (pooled or assigned; a tenant in any state but destroyed) whose
     * recorded schema version is below `target`, in rollout order: warm-pool databases first
     * (nobody uses them: a broken migration shows there before any customer), then by creation.
     */
    async eligibleDatabases(target: number, trx: Executor = db): Promise<EligibleDatabase[]> {
      return trx
        .selectFrom('tenant_databases as td')
        .leftJoin('tenants as t', 't.tenant_database_id', 'td.id')
        .select(['td.id', 'td.state', 'td.schema_version', 't.id as tenant_id', 't.name as tenant_name', 't.customer_id'])
        .where('td.state', 'in', ['pooled', 'assigned'])
        .where('td.schema_version', '<', target)
        .where((eb) => eb.or([eb('t.id', 'is', null), eb('t.state', '!=', 'destroyed')]))
        .orderBy(sql`td.state = 'assigned'`)
        .orderBy('td.created_at')
        .orderBy('td.id')
        .execute();
    },

    async insertItems(items: RolloutItemsTable[], trx: Executor = db): Promise<void> {
      for (let i = 0; i < items.length; i += 1000) await trx.insertInto('rollout_items').values(items.slice(i, i + 1000)).execute();
    },

    async setNotices(rolloutId: string, sent: number, until: Date | null, trx: Executor = db): Promise<void> {
      await trx.updateTable('rollouts').set({ notices_sent: sent, notice_until: until }).where('id', '=', rolloutId).execute();
    },

    /** Owners and administrators of `customerIds` (who receive maintenance notices). */
    async noticeRecipients(customerIds: readonly string[], trx: Executor = db): Promise<{ user_id: string; email: string; name: string; locale: Locale; customer_id: string }[]> {
      if (customerIds.length === 0) return [];
      return trx
        .selectFrom('memberships as m')
        .innerJoin('users as u', 'u.id', 'm.user_id')
        .select(['u.id as user_id', 'u.email', 'u.name', 'u.locale', 'm.customer_id'])
        .where('m.customer_id', 'in', customerIds)
        .where('m.role', 'in', ['owner', 'administrator'])
        .orderBy('u.id')
        .execute();
    },

    /** Up to `limit` items a worker may take now, in rollout order. */
    async readyItems(rolloutId: string, now: Date, limit: number, trx: Executor = db): Promise<ItemRow[]> {
      return trx.selectFrom('rollout_items').selectAll().where('rollout_id', '=', rolloutId).where(ready(now)).orderBy('position').limit(limit).execute();
    },

    /**
     * Takes one item for `workerId` until `leaseUntil` (compare-and-set: of two workers, one
     * wins; an item under a live lease is not taken). Counts the attempt.
     */
    async claimItem(key: ItemKey, workerId: string, now: Date, leaseUntil: Date, trx: Executor = db): Promise<ItemRow | undefined> {
      return trx
        .updateTable('rollout_items')
        .set((eb) => ({
          state: 'running',
          attempts: eb('attempts', '+', 1),
          leased_until: leaseUntil,
          worker_id: workerId,
          started_at: sql<Date>`COALESCE(started_at, ${now})`,
          next_attempt_at: null,
        }))
        .where('rollout_id', '=', key.rolloutId)
        .where('tenant_database_id', '=', key.tenantDatabaseId)
        .where(ready(now))
        .returningAll()
        .executeTakeFirst();
    },

    /** Extends a lease still held by `workerId`; false when it was lost (expired and taken). */
    async extendLease(key: ItemKey, workerId: string, leaseUntil: Date, trx: Executor = db): Promise<boolean> {
      return updateHeld(trx, key, workerId, { leased_until: leaseUntil });
    },

    /**
     * Moves an item this worker holds out of `running` (done, failed, deferred, skipped, or back
     * to pending for a retry), releasing the lease. False when the worker no longer held it.
     */
    async releaseItem(key: ItemKey, workerId: string, patch: Pick<ItemRow, 'state'> & Partial<Pick<ItemRow, 'from_version' | 'last_error' | 'next_attempt_at' | 'finished_at' | 'deferral_id'>>, trx: Executor = db): Promise<boolean> {
      return updateHeld(trx, key, workerId, { ...patch, leased_until: null, worker_id: null });
    },

    async counts(rolloutId: string, now: Date, trx: Executor = db): Promise<ItemCounts> {
      const row = await trx
        .selectFrom('rollout_items')
        .select([
          sql<number>`count(*)::int`.as('total'),
          sql<number>`count(*) FILTER (WHERE state = 'pending')::int`.as('pending'),
          sql<number>`count(*) FILTER (WHERE state = 'running')::int`.as('running'),
          sql<number>`count(*) FILTER (WHERE state = 'done')::int`.as('done'),
          sql<number>`count(*) FILTER (WHERE state = 'failed')::int`.as('failed'),
          sql<number>`count(*) FILTER (WHERE state = 'deferred')::int`.as('deferred'),
          sql<number>`count(*) FILTER (WHERE state = 'skipped')::int`.as('skipped'),
          sql<number>`count(*) FILTER (WHERE state = 'pending' AND not_before > ${now})::int`.as('waiting'),
        ])
        .where('rollout_id', '=', rolloutId)
        .executeTakeFirstOrThrow();
      return row;
    },

    /** The earliest instant an open item becomes takeable (back-off, notice period or lease end); null when none is open. */
    async nextWake(rolloutId: string, trx: Executor = db): Promise<Date | null> {
      const row = await trx
        .selectFrom('rollout_items')
        .select(sql<Date | null>`min(CASE WHEN state = 'running' THEN leased_until ELSE GREATEST(next_attempt_at, not_before) END)`.as('wake'))
        .where('rollout_id', '=', rolloutId)
        .where('state', 'in', ['pending', 'running'])
        .executeTakeFirstOrThrow();
      return row.wake;
    },

    /** Closes a running rollout (compare-and-set: of several workers, one does it). */
    async finishRollout(id: string, state: Exclude<RolloutState, 'running'>, now: Date, trx: Executor = db): Promise<RolloutRow | undefined> {
      return trx.updateTable('rollouts').set({ state, finished_at: now }).where('id', '=', id).where('state', '=', 'running').returningAll().executeTakeFirst();
    },

    /** True while the rollout has items that are not finished. */
    async hasOpenItems(rolloutId: string, trx: Executor = db): Promise<boolean> {
      const row = await trx.selectFrom('rollout_items').select('position').where('rollout_id', '=', rolloutId).where('state', 'in', ['pending', 'running']).limit(1).executeTakeFirst();
      return row !== undefined;
    },

    /** Items of a rollout in `states`, with their tenant, in rollout order. */
    async itemsWithTenant(rolloutId: string, states: readonly ItemRow['state'][], limit: number, trx: Executor = db): Promise<ItemWithTenant[]> {
      return trx
        .selectFrom('rollout_items as i')
        .leftJoin('tenants as t', 't.tenant_database_id', 'i.tenant_database_id')
        .selectAll('i')
        .select(['t.id as tenant_id', 't.name as tenant_name'])
        .where('i.rollout_id', '=', rolloutId)
        .where('i.state', 'in', [...states])
        .orderBy('i.position')
        .limit(limit)
        .execute();
    },

    /** Running rollouts that have an item a worker may take now. */
    async dueRollouts(now: Date, trx: Executor = db): Promise<RolloutRow[]> {
      return trx
        .selectFrom('rollouts as r')
        .selectAll('r')
        .where('r.state', '=', 'running')
        .where(({ exists, selectFrom }) => exists(selectFrom('rollout_items').select('position').whereRef('rollout_id', '=', 'r.id').where(ready(now))))
        .orderBy('r.created_at')
        .execute();
    },

    /** What processing an item needs to know: the database's state, its tenant and the tenant's state. */
    async databaseOfItem(tenantDatabaseId: string, trx: Executor = db): Promise<{ state: TenantDatabaseState; tenant_id: string | null; tenant_state: TenantState | null } | undefined> {
      return trx
        .selectFrom('tenant_databases as td')
        .leftJoin('tenants as t', 't.tenant_database_id', 'td.id')
        .select(['td.state', 't.id as tenant_id', 't.state as tenant_state'])
        .where('td.id', '=', tenantDatabaseId)
        .executeTakeFirst();
    },

    async findTenant(id: string, trx: Executor = db): Promise<{ id: string; customer_id: string; name: string; state: TenantState } | undefined> {
      return trx.selectFrom('tenants').select(['id', 'customer_id', 'name', 'state']).where('id', '=', id).executeTakeFirst();
    },

    /** Records (or replaces) the deferral of one tenant for one release version. */
    async upsertDeferral(row: DeferralRow, trx: Executor = db): Promise<DeferralRow> {
      return trx
        .insertInto('security_deferrals')
        .values(row)
        .onConflict((oc) =>
          oc.constraint('security_deferrals_one_per_release').doUpdateSet((eb) => ({
            reference: eb.ref('excluded.reference'),
            until: eb.ref('excluded.until'),
            recorded_by_type: eb.ref('excluded.recorded_by_type'),
            recorded_by_id: eb.ref('excluded.recorded_by_id'),
            recorded_at: eb.ref('excluded.recorded_at'),
          })),
        )
        .returning(deferralColumns)
        .executeTakeFirstOrThrow();
    },

    /** Deferrals of `version` (for some tenants, or all), in force or not: the caller compares `until` with today. */
    async deferrals(version: number, tenantIds: readonly string[] | null, trx: Executor = db): Promise<DeferralRow[]> {
      if (tenantIds && tenantIds.length === 0) return [];
      let q = trx.selectFrom('security_deferrals').select(deferralColumns).where('release_version', '=', version);
      if (tenantIds) q = q.where('tenant_id', 'in', [...tenantIds]);
      return q.execute();
    },

    /** Every tenant with a database (not destroyed), with what a release report needs about `version`. */
    async reportRows(version: number, trx: Executor = db): Promise<ReportTenantRow[]> {
      const result = await sql<ReportTenantRow>`
        SELECT t.id AS tenant_id, t.name AS tenant_name, t.customer_id, t.state AS tenant_state,
               td.id AS tenant_database_id, td.schema_version,
               (SELECT min(i.finished_at) FROM rollout_items i
                 WHERE i.tenant_database_id = td.id AND i.state = 'done' AND i.to_version >= ${version} AND i.from_version < ${version}) AS upgraded_at,
               last.state AS last_item_state, last.last_error AS last_item_error
        FROM tenants t
        JOIN tenant_databases td ON td.id = t.tenant_database_id
        LEFT JOIN LATERAL (
          SELECT i.state, i.last_error FROM rollout_items i JOIN rollouts r ON r.id = i.rollout_id
          WHERE i.tenant_database_id = td.id AND r.target_version >= ${version}
          ORDER BY r.created_at DESC LIMIT 1) last ON true
        WHERE t.state <> 'destroyed' AND td.state IN ('assigned', 'pooled')
        ORDER BY t.name, t.id`.execute(trx);
      return result.rows;
    },
  };
}

export type RolloutsRepo = ReturnType<typeof createRolloutsRepo>;
