/**
 * SQL of the deletion module, and nothing else. Every state change of a `tenant_deletions` row is a
 * compare-and-set on its state (a reactivation and a destruction racing on the same tenant cannot
 * both win); every method takes an optional transaction.
 *
 * Reads of other modules' tables (tenant_databases, backups, backup_copies) are read-only, except
 * `markBackupsPruned`, which records the deletion of a destroyed tenant's backup objects exactly
 * as the backups module's retention does (BKP-7).
 */
import { sql, type Insertable } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { DeletionState, TenantDeletionsTable } from './deletion-tables.ts';

export type DeletionRow = TenantDeletionsTable;
export type NewDeletion = Insertable<TenantDeletionsTable>;

const DAY_MS = 86_400_000;

export function createDeletionRepo(db: Db) {
  return {
    async find(tenantId: string, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx.selectFrom('tenant_deletions').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    },

    /**
     * The cancellation's row: inserted, or (a tenant cancelled again after a reactivation) the
     * `reactivated` row starts a new grace period. Undefined when a live row is in the way.
     */
    async upsertCancelled(row: NewDeletion, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx
        .insertInto('tenant_deletions')
        .values(row)
        .onConflict((oc) =>
          oc
            .column('tenant_id')
            .doUpdateSet({
              state: 'pending',
              cancel_cause: row.cancel_cause,
              cancel_reason: row.cancel_reason ?? null,
              cancelled_at: row.cancelled_at,
              cancelled_by: row.cancelled_by ?? null,
              destroy_after: row.destroy_after,
              access_applied: false,
              tenant_name: row.tenant_name,
              tenant_database_id: row.tenant_database_id ?? null,
              database_name: row.database_name ?? null,
              role_name: row.role_name ?? null,
              server_name: row.server_name ?? null,
              updated_at: row.updated_at,
            })
            .where('tenant_deletions.state', '=', 'reactivated'),
        )
        .returningAll()
        .executeTakeFirst();
    },

    /** pending → reactivated, only within the grace period (compare-and-set). */
    async reactivate(tenantId: string, now: Date, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx
        .updateTable('tenant_deletions')
        .set({ state: 'reactivated', access_applied: false, updated_at: now })
        .where('tenant_id', '=', tenantId)
        .where('state', '=', 'pending')
        .where('destroy_after', '>', now)
        .returningAll()
        .executeTakeFirst();
    },

    /** pending → destroying: the point of no return, committed with the tenant's transition to destroyed. */
    async claimDestruction(tenantId: string, values: Pick<DeletionRow, 'rule' | 'destroyed_at' | 'destroyed_by' | 'purge_at' | 'lease_until'>, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx
        .updateTable('tenant_deletions')
        .set({ ...values, state: 'destroying', updated_at: values.destroyed_at! })
        .where('tenant_id', '=', tenantId)
        .where('state', '=', 'pending')
        .returningAll()
        .executeTakeFirst();
    },

    /** Pending rows whose grace period is over and whose tenant is still cancelled. */
    async dueForDestruction(now: Date, trx: Executor = db): Promise<string[]> {
      const rows = await trx
        .selectFrom('tenant_deletions as d')
        .innerJoin('tenants as t', 't.id', 'd.tenant_id')
        .select('d.tenant_id')
        .where('d.state', '=', 'pending')
        .where('d.destroy_after', '<=', now)
        .where('t.state', '=', 'cancelled')
        .orderBy('d.destroy_after')
        .limit(100)
        .execute();
      return rows.map((r) => r.tenant_id);
    },

    /**
     * Pending rows whose tenant left `cancelled` another way (staff `resume`): they become
     * `reactivated`, so that LOGIN is restored and the tenant is never destroyed. Returns them.
     */
    async settleResumed(now: Date, trx: Executor = db): Promise<string[]> {
      const rows = await trx
        .updateTable('tenant_deletions as d')
        .from('tenants as t')
        .set({ state: 'reactivated', access_applied: false, updated_at: now })
        .whereRef('t.id', '=', 'd.tenant_id')
        .where('d.state', '=', 'pending')
        .where('t.state', 'in', ['trial', 'active', 'suspended'])
        .returning('d.tenant_id')
        .execute();
      return rows.map((r) => r.tenant_id);
    },

    /** Rows whose role LOGIN does not match their state yet (a crash between the commit and the server). */
    async accessToApply(trx: Executor = db): Promise<DeletionRow[]> {
      return trx.selectFrom('tenant_deletions').selectAll().where('access_applied', '=', false).where('state', 'in', ['pending', 'reactivated']).limit(100).execute();
    },

    /** Records that LOGIN was applied for `state` (nothing when the row moved on meanwhile). */
    async markAccessApplied(tenantId: string, state: DeletionState, trx: Executor = db): Promise<void> {
      await trx.updateTable('tenant_deletions').set({ access_applied: true }).where('tenant_id', '=', tenantId).where('state', '=', state).execute();
    },

    /** Leases one destroying row whose lease lapsed (wall clock), one worker at a time. */
    async leaseDestroying(wallNow: Date, until: Date, exclude: readonly string[] = [], trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx
        .updateTable('tenant_deletions')
        .set((eb) => ({ lease_until: until, attempts: eb('attempts', '+', 1) }))
        .where('tenant_id', '=', (eb) =>
          eb
            .selectFrom('tenant_deletions')
            .select('tenant_id')
            .where('state', '=', 'destroying')
            .where((w) => w.or([w('lease_until', 'is', null), w('lease_until', '<', wallNow)]))
            .$if(exclude.length > 0, (q) => q.where('tenant_id', 'not in', exclude))
            .orderBy('destroyed_at')
            .limit(1)
            .forUpdate()
            .skipLocked(),
        )
        .returningAll()
        .executeTakeFirst();
    },

    async update(tenantId: string, patch: Partial<DeletionRow>, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx.updateTable('tenant_deletions').set(patch).where('tenant_id', '=', tenantId).returningAll().executeTakeFirst();
    },

    /** destroying → destroyed (compare-and-set). */
    async complete(tenantId: string, patch: Partial<DeletionRow>, trx: Executor = db): Promise<DeletionRow | undefined> {
      return trx.updateTable('tenant_deletions').set({ ...patch, state: 'destroyed', lease_until: null, last_error: null }).where('tenant_id', '=', tenantId).where('state', '=', 'destroying').returningAll().executeTakeFirst();
    },

    /** Destroyed tenants whose backups are not all gone, not looked at in the last day (daily retry). */
    async toPurge(now: Date, trx: Executor = db): Promise<DeletionRow[]> {
      return trx
        .selectFrom('tenant_deletions')
        .selectAll()
        .where('state', '=', 'destroyed')
        .where('backups_deleted_at', 'is', null)
        .where((w) => w.or([w('backups_checked_at', 'is', null), w('backups_checked_at', '<=', new Date(now.getTime() - DAY_MS)), w('purge_at', '<=', now).and('key_shredded_at', 'is', null)]))
        .orderBy('purge_at')
        .limit(100)
        .execute();
    },

    /** The state of a tenant database in the fleet (read-only), to know whether its drop finished. */
    async databaseState(tenantDatabaseId: string, trx: Executor = db): Promise<string | undefined> {
      const row = await trx.selectFrom('tenant_databases').select('state').where('id', '=', tenantDatabaseId).executeTakeFirst();
      return row?.state;
    },

    /** Backups of a tenant still holding objects (not pruned): count, and the latest date retention may keep one. */
    async remainingBackups(tenantId: string, trx: Executor = db): Promise<{ id: string; taken_at: Date | null; started_at: Date; retain_until: Date }[]> {
      return trx.selectFrom('backups').select(['id', 'taken_at', 'started_at', 'retain_until']).where('tenant_id', '=', tenantId).where('state', '!=', 'pruned').execute();
    },

    /** Records that every object of these backups is deleted, as the backups retention does. */
    async markBackupsPruned(ids: readonly string[], now: Date, trx: Executor = db): Promise<void> {
      if (ids.length === 0) return;
      await trx.updateTable('backup_copies').set({ state: 'deleted', checked_at: now }).where('backup_id', 'in', ids).execute();
      await trx.updateTable('backups').set({ state: 'pruned', pruned_at: now }).where('id', 'in', ids).where('state', '!=', 'pruned').execute();
    },

    /** For tests and the operator: every row, newest first. */
    async list(limit = 100, trx: Executor = db): Promise<DeletionRow[]> {
      return trx.selectFrom('tenant_deletions').selectAll().orderBy(sql`coalesce(destroyed_at, cancelled_at)`, 'desc').limit(limit).execute();
    },
  };
}

export type DeletionRepo = ReturnType<typeof createDeletionRepo>;
