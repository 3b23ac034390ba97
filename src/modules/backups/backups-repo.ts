/** SQL of the backups module (control plane). Every method takes an optional transaction. */
import { sql } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { BackupCopiesTable, BackupPart, BackupsTable, BackupTrigger } from './backups-tables.ts';

export type BackupRow = BackupsTable;
export type CopyRow = BackupCopiesTable;

/** A tenant as backups see it: its live database and the server that holds it. */
export interface BackupSubject {
  tenant_id: string;
  customer_id: string;
  name: string;
  region: string;
  state: string;
  tenant_database_id: string;
  server_id: string;
  server_name: string;
  schema_version: number;
}

export function createBackupsRepo(db: Db) {
  return {
    async subject(tenantId: string, trx: Executor = db): Promise<BackupSubject | undefined> {
      return trx
        .selectFrom('tenants as t')
        .innerJoin('tenant_databases as d', 'd.id', 't.tenant_database_id')
        .innerJoin('database_servers as s', 's.id', 'd.server_id')
        .select(['t.id as tenant_id', 't.customer_id', 't.name', 't.region', 't.state', 'd.id as tenant_database_id', 's.id as server_id', 's.name as server_name', 'd.schema_version'])
        .where('t.id', '=', tenantId)
        .where('t.state', '!=', 'destroyed')
        .executeTakeFirst();
    },

    async tenantOfDatabase(tenantDatabaseId: string, trx: Executor = db): Promise<string | undefined> {
      const row = await trx.selectFrom('tenants').select('id').where('tenant_database_id', '=', tenantDatabaseId).where('state', '!=', 'destroyed').executeTakeFirst();
      return row?.id;
    },

    /** Claims a tenant for one backup: false when one is already running (the unique index). */
    async insertRunning(row: Omit<BackupRow, 'taken_at' | 'completed_at' | 'size_bytes' | 'manifest' | 'error' | 'attempts' | 'verification' | 'verification_lease_until' | 'verified_at' | 'verification_error' | 'pruned_at'>, trx: Executor = db): Promise<boolean> {
      const inserted = await trx
        .insertInto('backups')
        .values({ ...row, verification: 'pending', attempts: 1 })
        .onConflict((oc) => oc.column('tenant_id').where('state', '=', 'running').doNothing())
        .returning('id')
        .executeTakeFirst();
      return inserted !== undefined;
    },

    async renewLease(id: string, workerId: string, until: Date): Promise<boolean> {
      const r = await db.updateTable('backups').set({ lease_until: until }).where('id', '=', id).where('state', '=', 'running').where('worker_id', '=', workerId).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    /** Compare-and-set from `running` (by this worker) to an end state. */
    async finish(id: string, workerId: string, values: Partial<BackupRow> & { state: BackupRow['state'] }, trx: Executor = db): Promise<boolean> {
      const r = await trx.updateTable('backups').set({ ...values, lease_until: null }).where('id', '=', id).where('state', '=', 'running').where('worker_id', '=', workerId).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    /** Running backups whose worker stopped renewing its lease (killed): marked failed; returns them. */
    async failAbandoned(now: Date, trx: Executor = db): Promise<BackupRow[]> {
      return trx
        .updateTable('backups')
        .set({ state: 'failed', error: 'interrupted: the worker stopped before the backup was complete', lease_until: null })
        .where('state', '=', 'running')
        .where('lease_until', '<', now)
        .returningAll()
        .execute();
    },

    async upsertCopy(copy: CopyRow, trx: Executor = db): Promise<void> {
      await trx
        .insertInto('backup_copies')
        .values(copy)
        .onConflict((oc) => oc.columns(['backup_id', 'location', 'part']).doUpdateSet({ size_bytes: copy.size_bytes, sha256: copy.sha256, state: copy.state, checked_at: copy.checked_at, object_key: copy.object_key }))
        .execute();
    },

    async markCopy(backupId: string, location: string, part: BackupPart, state: CopyRow['state'], at: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('backup_copies').set({ state, checked_at: at }).where('backup_id', '=', backupId).where('location', '=', location).where('part', '=', part).execute();
    },

    async copies(backupId: string, trx: Executor = db): Promise<CopyRow[]> {
      return trx.selectFrom('backup_copies').selectAll().where('backup_id', '=', backupId).orderBy('location').orderBy('part').execute();
    },

    async get(id: string, trx: Executor = db): Promise<BackupRow | undefined> {
      return trx.selectFrom('backups').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async listForTenant(tenantId: string, options: { states?: BackupRow['state'][]; limit?: number } = {}, trx: Executor = db): Promise<BackupRow[]> {
      let q = trx.selectFrom('backups').selectAll().where('tenant_id', '=', tenantId);
      if (options.states) q = q.where('state', 'in', options.states);
      return q.orderBy('started_at', 'desc').limit(options.limit ?? 1000).execute();
    },

    /** Backups started for a tenant since `since` by a trigger (on-demand quota, schedule). */
    async countSince(tenantId: string, since: Date, triggers: BackupTrigger[], states: BackupRow['state'][], trx: Executor = db): Promise<number> {
      const row = await trx
        .selectFrom('backups')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('tenant_id', '=', tenantId)
        .where('started_at', '>=', since)
        .where('trigger', 'in', triggers)
        .where('state', 'in', states)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /**
     * Tenants whose data can change (trial, active, suspended, with a database), for the schedule.
     * Not cancelled ones (TEN-4): their role may not log in and nobody can write to them, so the
     * last backup before the cancellation stays current; not destroyed ones.
     */
    async liveTenants(trx: Executor = db): Promise<{ id: string }[]> {
      return trx.selectFrom('tenants').select('id').where('state', 'in', ['trial', 'active', 'suspended']).where('tenant_database_id', 'is not', null).orderBy('id').execute();
    },

    /** The newest backup of each tenant in `ids` started since `since` that counts for the schedule (complete, incomplete or running), and the newest failure. */
    async recentByTenant(since: Date, trx: Executor = db): Promise<{ tenant_id: string; state: string; started_at: Date }[]> {
      return trx.selectFrom('backups').select(['tenant_id', 'state', 'started_at']).where('started_at', '>=', since).where('state', '!=', 'pruned').execute();
    },

    /** Leases the oldest complete, unverified backup (or one whose verifier died). */
    async leaseVerification(now: Date, until: Date, trx: Executor = db): Promise<BackupRow | undefined> {
      return trx
        .updateTable('backups')
        .set({ verification: 'running', verification_lease_until: until })
        .where('id', '=', (eb) =>
          eb
            .selectFrom('backups')
            .select('id')
            .where('state', '=', 'complete')
            .where((w) => w.or([w('verification', '=', 'pending'), w.and([w('verification', '=', 'running'), w('verification_lease_until', '<', now)])]))
            // BKP-7: a backup whose key is shredded can no longer be read, by design.
            .where('key_id', 'not in', (k) => k.selectFrom('backup_keys').select('key_id').where('wrapped_key', 'is', null))
            .orderBy('completed_at')
            .limit(1)
            .forUpdate()
            .skipLocked(),
        )
        .returningAll()
        .executeTakeFirst();
    },

    async finishVerification(id: string, values: { verification: 'verified' | 'failed'; verified_at: Date; verification_error: string | null }, trx: Executor = db): Promise<boolean> {
      const r = await trx.updateTable('backups').set({ ...values, verification_lease_until: null }).where('id', '=', id).where('verification', '=', 'running').executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async incomplete(trx: Executor = db): Promise<BackupRow[]> {
      return trx
        .selectFrom('backups')
        .selectAll()
        .where('state', '=', 'incomplete')
        // BKP-7: nothing to repair once the key is shredded (the copies are unreadable anyway).
        .where('key_id', 'not in', (k) => k.selectFrom('backup_keys').select('key_id').where('wrapped_key', 'is', null))
        .orderBy('started_at')
        .limit(100)
        .execute();
    },

    async setState(id: string, from: BackupRow['state'][], values: Partial<BackupRow> & { state: BackupRow['state'] }, trx: Executor = db): Promise<boolean> {
      const r = await trx.updateTable('backups').set(values).where('id', '=', id).where('state', 'in', from).executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    /** Every backup of a tenant that retention looks at (not pruned, not running). */
    async forRetention(tenantId: string, trx: Executor = db): Promise<BackupRow[]> {
      return trx.selectFrom('backups').selectAll().where('tenant_id', '=', tenantId).where('state', 'in', ['complete', 'incomplete', 'failed']).execute();
    },

    async extendRetainUntil(id: string, until: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('backups').set({ retain_until: sql<Date>`greatest(retain_until, ${until})` }).where('id', '=', id).execute();
    },

    /** Tenants with at least one backup (retention sweeps them, destroyed ones included). */
    async tenantsWithBackups(trx: Executor = db): Promise<string[]> {
      const rows = await trx.selectFrom('backups').select('tenant_id').where('state', 'in', ['complete', 'incomplete', 'failed']).distinct().execute();
      return rows.map((r) => r.tenant_id);
    },
  };
}

export type BackupsRepo = ReturnType<typeof createBackupsRepo>;
