/**
 * The background work of deletion, each a function of `(deps, now)` so a test can run thirteen
 * months in a second (ENGINEERING habit 8):
 *
 *  1. access: a role's LOGIN is made to match its row (NOLOGIN while cancelled, LOGIN once
 *     reactivated), repairing a crash between a commit and the server (TEN-4);
 *  2. destruction: tenants whose grace period is over are destroyed (TEN-4): the tenant's
 *     transition to `destroyed` and the row's `destroying` commit together (the point of no
 *     return), then idempotent steps — role locked out and pools closed, database and role
 *     dropped, attachments deleted — each recorded by its own column, so a crash anywhere is
 *     finished by the next run (a lease keeps two nodes off the same tenant);
 *  3. backups of destroyed tenants (BKP-7): at the latest `purge_at` (destruction + 12 months),
 *     or as soon as none is left, the data key is shredded (every copy unreadable at once); then
 *     the objects are deleted as soon as their locks allow, retried daily. Both steps audited;
 *     the certificate reads the same row, so it shows them.
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { ObjectLockedError, type BackupStore } from '../../lib/storage/backup-store.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { AuditService } from '../audit/audit-service.ts';
import type { BackupKeys } from '../backups/backup-keys.ts';
import type { FleetModule } from '../fleet/index.ts';
import type { TenantsService } from '../tenants/index.ts';
import type { DeletionRepo, DeletionRow } from './deletion-repo.ts';
import type { DestructionRule } from './deletion-tables.ts';

export interface DeletionDeps {
  db: Db;
  repo: DeletionRepo;
  clock: Clock;
  audit: AuditService;
  logger: Logger;
  fleet: Pick<FleetModule, 'databases' | 'connections'>;
  tenants: Pick<TenantsService, 'transition'>;
  /** Attachments storage (`tenants/<tenantDatabaseId>/…`). */
  files: Storage;
  /** Where export archives live (`<exportsRoot>/<tenantId>/…`, portability module): removed with the tenant. */
  exportsRoot?: string;
  backups: { stores: readonly BackupStore[]; keys: Pick<BackupKeys, 'shred'> };
  settings: Config['deletion'];
}

/** A destroying row is leased this long (wall clock: a worker's liveness, not business time). */
export const DESTROY_LEASE_MS = 10 * 60_000;

/** `date` + `months` calendar months (UTC), clamped to the month's last day. */
export function addMonths(date: Date, months: number): Date {
  const d = new Date(date);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() + months);
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d;
}

function shortError(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .replace(/postgres(ql)?:\/\/[^\s]*/g, 'postgres://…')
    .slice(0, 900);
}

/** Where a tenant database's attachments live in the storage. */
export function attachmentsArea(tenantDatabaseId: string): string {
  return `tenants/${tenantDatabaseId}`;
}

/**
 * Commits the point of no return of one cancelled tenant (pending row): tenant → destroyed
 * (recorded, audited by the tenants service) with the row → destroying and leased, in one
 * transaction. Undefined when the row is no longer pending (reactivated, or another node won).
 * `leased`: the caller runs the steps itself right away (an immediate destruction), so no other
 * node takes them meanwhile; otherwise the next lease of the loop does.
 */
export async function claimDestruction(
  deps: DeletionDeps,
  tenantId: string,
  rule: DestructionRule,
  actor: { type: 'user' | 'staff' | 'system' | 'cli'; id?: string | null; ip?: string | null },
  now: Date,
  options: { leased?: boolean } = {},
): Promise<DeletionRow | undefined> {
  const reasons: Record<DestructionRule, string> = { grace_period_expired: 'grace period expired', customer_request: 'immediate destruction asked by the customer', staff: 'destroyed by staff' };
  return deps.db.transaction().execute(async (trx) => {
    const claimed = await deps.repo.claimDestruction(tenantId, { rule, destroyed_at: now, destroyed_by: actor.id ?? actor.type, purge_at: addMonths(now, deps.settings.backupRetentionMonths), lease_until: options.leased ? new Date(Date.now() + DESTROY_LEASE_MS) : null }, trx);
    if (!claimed) return undefined;
    await deps.tenants.transition(tenantId, 'destroyed', { actor, reason: reasons[rule], from: ['cancelled'] }, trx);
    return claimed;
  });
}

/**
 * Runs the remaining steps of a destroying row (idempotent, in order); the row ends `destroyed`.
 * On failure the error is recorded and the lease released, so the next run retries at once.
 */
export async function runDestructionSteps(deps: DeletionDeps, row: DeletionRow): Promise<DeletionRow> {
  const { repo, fleet } = deps;
  let current = row;
  try {
    const dbId = current.tenant_database_id;
    if (dbId && !current.database_dropped_at) {
      await fleet.databases.setLogin(dbId, false).catch(() => false); // lock out first, whatever follows
      await fleet.connections.close(dbId);
      await fleet.databases.drop(dbId);
      const state = await repo.databaseState(dbId);
      // `dropping` = a drop interrupted on some node: the fleet's sweeper finishes it; retry later.
      if (state !== 'dropped') throw new Error(`tenant database ${dbId} is ${state ?? 'missing'}, not dropped yet`);
      current = (await repo.update(current.tenant_id, { database_dropped_at: deps.clock.now(), updated_at: deps.clock.now() }))!;
    }
    if (dbId && !current.attachments_deleted_at) {
      const area = attachmentsArea(dbId);
      if (current.attachments_count === null) {
        // Counted once, before the first deletion: a retry after a crash keeps the first count.
        let count = 0;
        let bytes = 0;
        for await (const obj of deps.files.list(area)) {
          count++;
          bytes += obj.size;
        }
        current = (await repo.update(current.tenant_id, { attachments_count: count, attachments_bytes: String(bytes) }))!;
      }
      for await (const obj of deps.files.list(area)) await deps.files.delete(obj.key);
      await deps.files.deleteIncomplete(area, new Date(8.64e15));
      current = (await repo.update(current.tenant_id, { attachments_deleted_at: deps.clock.now(), updated_at: deps.clock.now() }))!;
    }
    // Export archives of the tenant (idempotent: a retry finds nothing left).
    if (deps.exportsRoot) {
      await rm(path.join(deps.exportsRoot, current.tenant_id), { recursive: true, force: true });
      await deps.db.updateTable('exports').set({ state: 'expired' }).where('tenant_id', '=', current.tenant_id).where('state', '=', 'complete').execute();
    }
    const now = deps.clock.now();
    const backups = (await repo.remainingBackups(current.tenant_id)).length;
    const done = await deps.db.transaction().execute(async (trx) => {
      const completed = await repo.complete(current.tenant_id, { completed_at: now, backups_at_destruction: backups, updated_at: now }, trx);
      if (!completed) return undefined;
      await deps.audit.record(
        {
          actorType: 'system',
          action: 'tenant.destroyed',
          subjectType: 'tenant',
          subjectId: completed.tenant_id,
          customerId: completed.customer_id,
          data: { rule: completed.rule, database: completed.database_name, role: completed.role_name, attachments: completed.attachments_count, attachmentBytes: Number(completed.attachments_bytes ?? 0), backupsRemaining: backups, purgeAt: completed.purge_at?.toISOString() },
        },
        trx,
      );
      return completed;
    });
    return done ?? (await repo.find(current.tenant_id))!;
  } catch (err) {
    deps.logger.warn({ err: shortError(err), tenantId: current.tenant_id }, 'a destruction step failed; the next run retries it');
    return (await repo.update(current.tenant_id, { last_error: shortError(err), lease_until: null, updated_at: deps.clock.now() }))!;
  }
}

/**
 * BKP-7 for one destroyed tenant at `now`: shreds the key when `purge_at` is reached (or when no
 * backup is left), then — once shredded — deletes every object under `backups/<tenantId>/` whose
 * lock has passed in every location. Returns what it did.
 */
export async function purgeBackups(deps: DeletionDeps, row: DeletionRow, now: Date): Promise<{ shredded: boolean; deleted: number; waiting: number }> {
  const { repo, audit } = deps;
  const tenantId = row.tenant_id;
  let remaining = await repo.remainingBackups(tenantId);
  let shredded = false;
  if (!row.key_shredded_at && (remaining.length === 0 || (row.purge_at && row.purge_at <= now))) {
    const { keyId } = await deps.backups.keys.shred(tenantId);
    await deps.db.transaction().execute(async (trx) => {
      await repo.update(tenantId, { key_shredded_at: now, updated_at: now }, trx);
      await audit.record({ actorType: 'system', action: 'backup.key_shredded', subjectType: 'tenant', subjectId: tenantId, customerId: row.customer_id, data: { keyId, backupsRemaining: remaining.length } }, trx);
    });
    shredded = true;
  }
  let deleted = 0;
  const locked = new Set<string>();
  if (row.key_shredded_at || shredded) {
    for (const store of deps.backups.stores) {
      for await (const obj of store.list(`backups/${tenantId}/`)) {
        try {
          if (await store.delete(obj.key)) deleted++;
        } catch (err) {
          if (!(err instanceof ObjectLockedError)) throw err;
          locked.add(obj.key.split('/')[2] ?? '');
        }
      }
    }
    const gone = remaining.filter((b) => !locked.has(b.id)).map((b) => b.id);
    await repo.markBackupsPruned(gone, now);
    remaining = remaining.filter((b) => locked.has(b.id));
    if (locked.size === 0) {
      await deps.db.transaction().execute(async (trx) => {
        await repo.update(tenantId, { backups_deleted_at: now, backups_checked_at: now, updated_at: now }, trx);
        await audit.record({ actorType: 'system', action: 'backup.objects_deleted', subjectType: 'tenant', subjectId: tenantId, customerId: row.customer_id, data: { objectsDeleted: deleted } }, trx);
      });
      return { shredded, deleted, waiting: 0 };
    }
  }
  await repo.update(tenantId, { backups_checked_at: now, updated_at: now });
  return { shredded, deleted, waiting: locked.size };
}

/** Makes a row's role LOGIN match its state (TEN-4); false when it could not (retried next run). */
export async function applyAccess(deps: DeletionDeps, row: DeletionRow): Promise<boolean> {
  if (!row.tenant_database_id) return true;
  try {
    await deps.fleet.databases.setLogin(row.tenant_database_id, row.state === 'reactivated');
    await deps.repo.markAccessApplied(row.tenant_id, row.state);
    return true;
  } catch (err) {
    deps.logger.warn({ err: shortError(err), tenantId: row.tenant_id }, 'could not apply the tenant role LOGIN; will retry');
    return false;
  }
}

export interface DeletionRunReport {
  accessApplied: number;
  destroyed: number;
  stepsFailed: number;
  keysShredded: number;
  backupObjectsDeleted: number;
}

/** One pass of every deletion job at `now` (the module's loop, and tests). */
export async function runDeletionJobs(deps: DeletionDeps, now: Date): Promise<DeletionRunReport> {
  const report: DeletionRunReport = { accessApplied: 0, destroyed: 0, stepsFailed: 0, keysShredded: 0, backupObjectsDeleted: 0 };
  await deps.repo.settleResumed(now);
  for (const row of await deps.repo.accessToApply()) if (await applyAccess(deps, row)) report.accessApplied++;

  for (const tenantId of await deps.repo.dueForDestruction(now)) {
    await claimDestruction(deps, tenantId, 'grace_period_expired', { type: 'system' }, now).catch((err: unknown) => deps.logger.warn({ err: shortError(err), tenantId }, 'could not start a destruction'));
  }
  // Every destroying row not leased by a live worker (those just claimed above are not leased);
  // a row that fails is left for the next pass, and never blocks the others.
  const seen: string[] = [];
  for (let row = await deps.repo.leaseDestroying(new Date(), new Date(Date.now() + DESTROY_LEASE_MS), seen); row; row = await deps.repo.leaseDestroying(new Date(), new Date(Date.now() + DESTROY_LEASE_MS), seen)) {
    seen.push(row.tenant_id);
    const after = await runDestructionSteps(deps, row);
    if (after.state === 'destroyed') report.destroyed++;
    else report.stepsFailed++;
  }

  for (const row of await deps.repo.toPurge(now)) {
    try {
      const r = await purgeBackups(deps, row, now);
      if (r.shredded) report.keysShredded++;
      report.backupObjectsDeleted += r.deleted;
    } catch (err) {
      deps.logger.warn({ err: shortError(err), tenantId: row.tenant_id }, 'purging the backups of a destroyed tenant failed; will retry');
    }
  }
  return report;
}
