/**
 * Restoring a backup (BKP-5), never half:
 *
 *  1. a `backup_restores` row (one running restore per tenant) is committed, with a lease;
 *  2. a fresh tenant database is claimed from the warm pool (recorded on the row first);
 *  3. the dump is restored into it in ONE pg_restore transaction as its own role, the files are
 *     stored under its area, and row counts and checksums are compared with the manifest;
 *  4. one control-plane transaction then either creates the new tenant on that database (mode
 *     `new`) or switches the tenant to it (mode `in-place`, compare-and-set, after a fresh safety
 *     backup); only then is the old database dropped.
 *
 * A kill before step 4 leaves the tenant exactly as it was; `sweep` drops the claimed database of
 * a restore whose lease lapsed. A kill after it leaves the tenant fully restored.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import type { AuditService } from '../audit/audit-service.ts';
import { isNoPooledDatabase, type FleetModule } from '../fleet/index.ts';
import type { TenantsModule } from '../tenants/index.ts';
import type { WorkspaceModule } from '../workspace/index.ts';
import { compareWithManifest, openPart, readFiles, restoreDatabase } from './backup-reader.ts';
import { databaseIsGzip, type BackupManifest } from './backup-writer.ts';
import type { BackupsRepo } from './backups-repo.ts';
import type { BackupActor, BackupsService } from './backups-service.ts';
import type { BackupRestoresTable } from './backups-tables.ts';

const LEASE_MS = 60_000;

export interface RestoreDeps {
  db: Db;
  repo: BackupsRepo;
  clock: Clock;
  audit: AuditService;
  logger: Logger;
  service: Pick<BackupsService, 'take' | 'reader'>;
  fleet: Pick<FleetModule, 'databases' | 'connections'>;
  tenants: Pick<TenantsModule['service'], 'adoptDatabase' | 'switchDatabase'>;
  workspace: Pick<WorkspaceModule, 'upgrade'>;
  files: Storage;
  /** Test hook: called between the steps above (name of the step done). */
  onStep?: (step: 'claimed' | 'restored' | 'switched') => Promise<void> | void;
}

export interface RestoreInput {
  backupId: string;
  mode: 'new' | 'in-place';
  /** In place: must equal the tenant's name, typed by the customer. */
  confirm?: string;
  actor: BackupActor;
}

export type RestoreRow = BackupRestoresTable;

export function createBackupRestore(deps: RestoreDeps) {
  const { db, repo, clock, audit, logger, fleet } = deps;

  async function claimDatabase(region: string, restoreId: string): Promise<string> {
    let prefer: string | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await db.transaction().execute(async (trx) => {
          const database = await fleet.databases.acquire(region, trx, { prefer });
          await trx.updateTable('backup_restores').set({ target_database_id: database.id }).where('id', '=', restoreId).execute();
          return database.id;
        });
      } catch (err) {
        if (!isNoPooledDatabase(err) || attempt === 2) throw err;
        prefer = await fleet.databases.ensureAvailable(region);
      }
    }
    throw new Error('unreachable');
  }

  /** Empties a claimed database and restores the backup into it; throws when it does not match the manifest. */
  async function fill(targetId: string, backupId: string, manifest: BackupManifest): Promise<void> {
    // The pooled database carries the latest empty workspace schema: the dump brings its own.
    await fleet.connections.withTenant(targetId, (client) => client.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public'));
    await fleet.connections.close(targetId);
    const copies = await repo.copies(backupId);
    const target = await fleet.connections.target(targetId);
    await restoreDatabase((await openPart(deps.service.reader, copies, 'database')).plain, target, databaseIsGzip(manifest));
    const problems = await compareWithManifest(target, manifest);
    problems.push(...(await readFiles((await openPart(deps.service.reader, copies, 'files')).plain, manifest, { files: deps.files, tenantDatabaseId: targetId })));
    if (problems.length) throw new Error(`the restored data does not match the backup: ${problems.join('; ')}`);
    // A backup of an older workspace version is brought to the current one (and recorded).
    await deps.workspace.upgrade(targetId);
  }

  async function fail(row: RestoreRow, err: unknown): Promise<void> {
    const message = String((err as Error)?.message ?? err).slice(0, 900);
    await db.updateTable('backup_restores').set({ state: 'failed', error: message, finished_at: clock.now() }).where('id', '=', row.id).where('state', '=', 'running').execute();
    if (row.target_database_id) await dropUnused(row.target_database_id);
  }

  /** Drops a claimed target unless a tenant uses it (after a switch, it is the tenant's). */
  async function dropUnused(databaseId: string): Promise<void> {
    const used = await db.selectFrom('tenants').select('id').where('tenant_database_id', '=', databaseId).executeTakeFirst();
    if (!used) await fleet.databases.drop(databaseId).catch((err: unknown) => logger.warn({ err, databaseId }, 'dropping a restore target failed; the sweep retries'));
  }

  return {
    /** Restores a complete backup (see the file comment); returns the finished restore row. */
    async restore(tenantId: string, input: RestoreInput): Promise<RestoreRow> {
      const backup = await repo.get(input.backupId);
      if (!backup || backup.tenant_id !== tenantId || backup.state !== 'complete') throw notFound('backup_not_found', 'No such complete backup of this tenant.');
      const subject = await repo.subject(tenantId);
      if (!subject) throw notFound('tenant_not_found', 'No such tenant.');
      if (input.mode === 'in-place' && input.confirm !== subject.name) {
        throw badRequest('confirmation_required', 'Restoring in place replaces the current data: type the tenant name in "confirm".', { expected: 'the tenant name' });
      }
      const row: RestoreRow = {
        id: randomUUID(), backup_id: backup.id, tenant_id: tenantId, mode: input.mode, state: 'running', target_database_id: null, safety_backup_id: null, result_tenant_id: null,
        worker_id: `restore-${randomUUID()}`, lease_until: new Date(Date.now() + LEASE_MS), requested_by: input.actor.id ?? input.actor.type, started_at: clock.now(), finished_at: null, error: null,
      };
      const inserted = await db.insertInto('backup_restores').values(row).onConflict((oc) => oc.column('tenant_id').where('state', '=', 'running').doNothing()).returning('id').executeTakeFirst();
      if (!inserted) throw conflict('restore_in_progress', 'A restore of this tenant is already running.');
      await audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, ip: input.actor.ip ?? null, action: 'backup.restore_started', subjectType: 'backup', subjectId: backup.id, customerId: subject.customer_id, data: { tenantId, mode: input.mode, restoreId: row.id } });
      const renew = setInterval(() => void db.updateTable('backup_restores').set({ lease_until: new Date(Date.now() + LEASE_MS) }).where('id', '=', row.id).where('state', '=', 'running').execute().catch(() => {}), LEASE_MS / 3);
      try {
        if (input.mode === 'in-place') {
          const safety = await deps.service.take(tenantId, { trigger: 'pre_restore', actor: input.actor });
          if (safety.state !== 'complete') throw conflict('safety_backup_failed', `The safety backup before restoring is ${safety.state}; nothing was changed.`);
          row.safety_backup_id = safety.id;
          await db.updateTable('backup_restores').set({ safety_backup_id: safety.id }).where('id', '=', row.id).execute();
        }
        row.target_database_id = await claimDatabase(subject.region, row.id);
        await deps.onStep?.('claimed');
        await fill(row.target_database_id, backup.id, backup.manifest as BackupManifest);
        await deps.onStep?.('restored');
        const target = row.target_database_id;
        await db.transaction().execute(async (trx) => {
          if (input.mode === 'new') {
            row.result_tenant_id = await deps.tenants.adoptDatabase({ customerId: subject.customer_id, name: `${subject.name} (${backup.taken_at!.toISOString().slice(0, 10)})`.slice(0, 100), region: subject.region, tenantDatabaseId: target, actor: input.actor }, trx);
          } else {
            const switched = await deps.tenants.switchDatabase({ tenantId, from: subject.tenant_database_id, to: target, actor: input.actor, backupId: backup.id }, trx);
            if (!switched) throw conflict('tenant_changed', 'The tenant changed while restoring; nothing was changed.');
            row.result_tenant_id = tenantId;
          }
          await trx.updateTable('backup_restores').set({ state: 'succeeded', result_tenant_id: row.result_tenant_id, finished_at: clock.now() }).where('id', '=', row.id).where('state', '=', 'running').execute();
          await audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, ip: input.actor.ip ?? null, action: 'backup.restored', subjectType: 'backup', subjectId: backup.id, customerId: subject.customer_id, data: { tenantId, mode: input.mode, resultTenantId: row.result_tenant_id } }, trx);
        });
        await deps.onStep?.('switched');
        if (input.mode === 'in-place') {
          await fleet.databases.drop(subject.tenant_database_id).catch((err: unknown) => logger.warn({ err }, 'dropping the replaced database failed'));
          await deleteArea(deps.files, subject.tenant_database_id).catch(() => {});
        }
        row.state = 'succeeded';
      } catch (err) {
        await fail(row, err);
        throw err;
      } finally {
        clearInterval(renew);
      }
      return (await db.selectFrom('backup_restores').selectAll().where('id', '=', row.id).executeTakeFirst())!;
    },

    /** Restores whose worker died: marked failed, their claimed database dropped. Returns how many. */
    async sweep(): Promise<number> {
      const dead = await db.updateTable('backup_restores').set({ state: 'failed', error: 'interrupted: the worker stopped before the restore finished', finished_at: clock.now() }).where('state', '=', 'running').where('lease_until', '<', new Date()).returningAll().execute();
      for (const r of dead) if (r.target_database_id) await dropUnused(r.target_database_id);
      return dead.length;
    },
  };
}

/** Removes every file of a tenant database's area (after it was replaced). */
async function deleteArea(files: Storage, tenantDatabaseId: string): Promise<void> {
  for await (const obj of files.list(`tenants/${tenantDatabaseId}`)) await files.delete(obj.key);
}

export type BackupRestore = ReturnType<typeof createBackupRestore>;
