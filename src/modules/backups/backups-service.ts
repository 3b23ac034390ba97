/**
 * The rules of backups: taking one (claimed, leased, complete only when every copy is read back),
 * verifying one, repairing a missing copy, applying retention, and the daily schedule.
 * Restores are in backup-restore.ts; downloads in backup-download.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { AppError, conflict, notFound, tooManyRequests } from '../../lib/errors.ts';
import { ObjectLockedError, type BackupStore } from '../../lib/storage/backup-store.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { FleetModule } from '../fleet/index.ts';
import type { BackupAlerts } from './backup-alerts.ts';
import { escrowKey, type BackupKeys } from './backup-keys.ts';
import { compareWithManifest, openPart, readFiles, restoreDatabase, streamCopy, type ReaderDeps } from './backup-reader.ts';
import { databaseIsGzip, writeBackup, type BackupManifest, type WriterDeps } from './backup-writer.ts';
import type { BackupRow, BackupsRepo, CopyRow } from './backups-repo.ts';
import type { BackupTrigger } from './backups-tables.ts';
import { lockUntil, planRetention } from './retention.ts';

const DAY_MS = 86_400_000;
const LEASE_MS = 60_000;

export interface BackupActor {
  type: 'user' | 'staff' | 'system' | 'cli';
  id?: string | null;
  ip?: string | null;
}

export interface BackupsServiceDeps {
  db: Db;
  repo: BackupsRepo;
  clock: Clock;
  audit: AuditService;
  alerts: BackupAlerts;
  keys: BackupKeys;
  stores: readonly BackupStore[];
  writer: WriterDeps;
  fleet: Pick<FleetModule, 'scratch'>;
  settings: Config['backups'];
  logger: Logger;
  workerId?: string;
  /** MET-1: this node's CPU is shared among the tenants it works for, jobs included. */
  activity?: { begin(tenantId: string): () => void };
}

function shortError(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .replace(/postgres(ql)?:\/\/[^\s]*/g, 'postgres://…')
    .slice(0, 900);
}

export function createBackupsService(deps: BackupsServiceDeps) {
  const { db, repo, clock, audit, alerts, keys, stores, settings, logger } = deps;
  const workerId = deps.workerId ?? `backup-${randomUUID()}`;

  const reader: ReaderDeps = {
    stores,
    keyById: (keyId) => keys.byId(keyId),
    async onCorrupt(copy, reason) {
      await repo.markCopy(copy.backup_id, copy.location, copy.part, 'corrupt', clock.now());
      const backup = await repo.get(copy.backup_id);
      await alerts.raise({ kind: 'copy_corrupt', backupId: copy.backup_id, tenantId: backup?.tenant_id ?? '', location: copy.location, reason: `${copy.part} part: ${reason}` });
    },
  };

  /** Takes one backup now; returns its row (complete, incomplete or failed). 409 when one is running. */
  async function take(tenantId: string, options: { trigger: BackupTrigger; actor: BackupActor }): Promise<BackupRow> {
    const subject = await repo.subject(tenantId);
    if (!subject) throw notFound('tenant_not_found', 'No such tenant.');
    const { keyId, key } = await keys.ensure(tenantId);
    const id = randomUUID();
    const startedAt = clock.now();
    const claimed = await repo.insertRunning({
      id,
      tenant_id: tenantId,
      tenant_database_id: subject.tenant_database_id,
      key_id: keyId,
      trigger: options.trigger,
      state: 'running',
      started_at: startedAt,
      worker_id: workerId,
      lease_until: new Date(Date.now() + LEASE_MS),
      retain_until: new Date(startedAt.getTime() + settings.minLockDays * DAY_MS),
      requested_by: options.actor.id ?? options.actor.type,
    });
    if (!claimed) throw conflict('backup_in_progress', 'A backup of this tenant is already running.');
    const endActivity = deps.activity?.begin(tenantId) ?? (() => {});
    // The lease is wall-clock (a real process liveness), independent of the business clock.
    const renew = setInterval(() => void repo.renewLease(id, workerId, new Date(Date.now() + LEASE_MS)).catch(() => {}), LEASE_MS / 3);
    try {
      const out = await writeBackup(deps.writer, subject, id, { key, keyId }, new Date(startedAt.getTime() + settings.minLockDays * DAY_MS), clock);
      const now = clock.now();
      for (const c of out.copies) {
        if (c.ok) await repo.upsertCopy({ backup_id: id, location: c.location, part: c.part, object_key: c.key, size_bytes: String(c.size), sha256: c.sha256, state: 'checked', checked_at: now });
      }
      const failed = out.copies.filter((c) => !c.ok);
      const size = out.manifest.parts.database.size + out.manifest.parts.files.size + out.manifestPart.size;
      const manifest = { ...out.manifest, manifestPart: out.manifestPart };
      await repo.finish(id, workerId, { state: failed.length === 0 ? 'complete' : 'incomplete', taken_at: new Date(out.manifest.takenAt), completed_at: now, size_bytes: String(size), manifest, error: failed.length ? failed.map((f) => `${f.location}/${f.part}: ${f.error}`).join('; ').slice(0, 900) : null });
      await audit.record({ actorType: options.actor.type, actorId: options.actor.id ?? null, ip: options.actor.ip ?? null, action: 'backup.taken', subjectType: 'backup', subjectId: id, customerId: subject.customer_id, data: { tenantId, trigger: options.trigger, state: failed.length ? 'incomplete' : 'complete' } });
      for (const f of failed) await alerts.raise({ kind: 'backup_incomplete', backupId: id, tenantId, customerId: subject.customer_id, location: f.location, reason: `${f.part} part: ${f.error}` });
    } catch (err) {
      const reason = shortError(err);
      logger.warn({ backupId: id, tenantId, err: reason }, 'backup failed');
      await repo.finish(id, workerId, { state: 'failed', error: reason, completed_at: clock.now() });
      await alerts.raise({ kind: 'backup_failed', backupId: id, tenantId, customerId: subject.customer_id, reason });
    } finally {
      clearInterval(renew);
      endActivity();
    }
    return (await repo.get(id))!;
  }

  /** SHA-256 of every checked copy; a mismatch is marked corrupt and alerted. Resolves to the good copies. */
  async function checkCopies(copies: readonly CopyRow[]): Promise<CopyRow[]> {
    const results = await Promise.all(
      copies
        .filter((c) => c.state === 'checked')
        .map(async (copy) => {
          const store = stores.find((s) => s.name === copy.location);
          const read = store ? await store.digest(copy.object_key).catch(() => null) : null;
          if (read && read.sha256 === copy.sha256 && read.size === Number(copy.size_bytes)) return copy;
          await reader.onCorrupt(copy, read ? 'its stored bytes no longer match the SHA-256 recorded when it was written' : 'it cannot be read');
          return null;
        }),
    );
    return results.filter((c): c is CopyRow => c !== null);
  }

  /** Restore of the parts into a scratch database, compared with the manifest; the differences in words. */
  async function restoreAndCompare(backup: BackupRow, manifest: BackupManifest, pick: (part: 'database' | 'files') => Promise<Readable>): Promise<string[]> {
    const scratch = await deps.fleet.scratch.create({ avoidServerId: (await repo.subject(backup.tenant_id))?.server_id });
    try {
      await restoreDatabase(await pick('database'), scratch.config, databaseIsGzip(manifest));
      const problems = await compareWithManifest(scratch.config, manifest);
      problems.push(...(await readFiles(await pick('files'), manifest)));
      return problems;
    } finally {
      await scratch.drop().catch((err: unknown) => logger.warn({ err }, 'dropping a scratch database failed; the sweep will'));
    }
  }

  /**
   * Verifies one backup (BKP-4). Every stored copy's SHA-256 is checked (a bad one is marked
   * corrupt and alerted: it must not pass for a good one) while the first copy of each part is
   * restored, streamed, into a scratch database and compared with the manifest. Should that copy
   * turn out bad, the restore is done again from a copy that hashed right.
   */
  async function verify(backup: BackupRow): Promise<{ ok: boolean; problems: string[] }> {
    const manifest = backup.manifest as BackupManifest;
    const copies = await repo.copies(backup.id);
    const hashing = checkCopies(copies);
    hashing.catch(() => {});
    let problems: string[];
    try {
      problems = await restoreAndCompare(backup, manifest, async (part) => {
        const first = copies.find((c) => c.part === part && c.state === 'checked');
        if (!first) throw new Error(`no stored copy of the ${part} part`);
        return streamCopy(reader, first);
      });
    } catch (err) {
      problems = [shortError(err)];
    }
    const good = await hashing;
    const usedWasBad = (['database', 'files'] as const).some((part) => {
      const first = copies.find((c) => c.part === part && c.state === 'checked');
      return first && !good.includes(first);
    });
    if (usedWasBad) {
      try {
        problems = await restoreAndCompare(backup, manifest, async (part) => (await openPart(reader, good, part)).plain);
      } catch (err) {
        problems = [shortError(err)];
      }
    }
    return { ok: problems.length === 0, problems };
  }

  /** Leases and verifies the oldest unverified complete backup; false when there is none. */
  async function verifyNext(): Promise<boolean> {
    const backup = await repo.leaseVerification(new Date(Date.now()), new Date(Date.now() + 30 * 60_000));
    if (!backup) return false;
    const outcome = await verify(backup);
    const now = clock.now();
    await repo.finishVerification(backup.id, { verification: outcome.ok ? 'verified' : 'failed', verified_at: now, verification_error: outcome.ok ? null : outcome.problems.join('; ').slice(0, 900) });
    await audit.record({ actorType: 'system', action: 'backup.verified', subjectType: 'backup', subjectId: backup.id, data: { tenantId: backup.tenant_id, ok: outcome.ok } });
    if (!outcome.ok) await alerts.raise({ kind: 'verification_failed', backupId: backup.id, tenantId: backup.tenant_id, reason: outcome.problems.join('; ') });
    return true;
  }

  /**
   * Completes incomplete backups: each missing copy is copied (encrypted bytes as they are) from a
   * location whose copy still hashes right, then read back. Returns how many became complete.
   */
  async function repair(): Promise<number> {
    let completed = 0;
    for (const backup of await repo.incomplete()) {
      const copies = await repo.copies(backup.id);
      const parts = ['database', 'files', 'manifest'] as const;
      let missing = 0;
      for (const part of parts) {
        const good = copies.find((c) => c.part === part && c.state === 'checked');
        for (const store of stores) {
          if (copies.some((c) => c.part === part && c.location === store.name && c.state === 'checked')) continue;
          const source = good && stores.find((s) => s.name === good.location);
          if (!good || !source) {
            missing++;
            continue;
          }
          try {
            await store.delete(good.object_key).catch(() => false); // an unreferenced earlier attempt, if its lock allows
            const { body } = await source.get(good.object_key);
            try {
              await store.put(good.object_key, body, { retainUntil: backup.retain_until });
            } finally {
              body.destroy();
            }
            const read = await store.digest(good.object_key);
            if (read.sha256 !== good.sha256) throw new Error('copied with a different SHA-256');
            await repo.upsertCopy({ ...good, location: store.name, checked_at: clock.now() });
          } catch (err) {
            missing++;
            logger.warn({ backupId: backup.id, location: store.name, err: shortError(err) }, 'backup copy repair failed; will retry');
          }
        }
      }
      // The location must hold the tenant's escrowed key too, or it could not restore on its own.
      await keys.ensure(backup.tenant_id).catch(() => undefined);
      for (const store of stores) {
        if (!(await store.getMutable(escrowKey(backup.tenant_id)).catch(() => undefined))) missing++;
      }
      if (missing === 0 && (await repo.setState(backup.id, ['incomplete'], { state: 'complete', error: null }))) {
        completed++;
        await audit.record({ actorType: 'system', action: 'backup.repaired', subjectType: 'backup', subjectId: backup.id, data: { tenantId: backup.tenant_id } });
      }
    }
    return completed;
  }

  /**
   * Retention of one tenant (BKP-2): keepers get their locks extended (lockUntil), the others
   * are deleted from every location once their lock allows, then marked pruned.
   */
  async function applyRetention(tenantId: string): Promise<{ kept: number; pruned: number; waiting: number }> {
    const now = clock.now();
    const rows = await repo.forRetention(tenantId);
    const plan = planRetention(rows.map((r) => ({ id: r.id, takenAt: r.taken_at ?? r.started_at, complete: r.state === 'complete' })), now);
    for (const [id] of plan.keep) {
      const until = lockUntil(plan, id, now, settings.minLockDays * DAY_MS);
      const row = rows.find((r) => r.id === id)!;
      if (!until || until <= row.retain_until) continue;
      for (const c of await repo.copies(id)) {
        const store = stores.find((s) => s.name === c.location);
        if (store && c.state !== 'deleted') await store.extendRetention(c.object_key, until).catch((err: unknown) => logger.warn({ err: shortError(err), backupId: id }, 'extending a lock failed'));
      }
      await repo.extendRetainUntil(id, until);
    }
    let pruned = 0;
    let waiting = 0;
    for (const id of plan.prune) {
      const row = rows.find((r) => r.id === id)!;
      if (row.retain_until > now) {
        waiting++;
        continue;
      }
      let locked = false;
      for (const store of stores) {
        for await (const obj of store.list(`backups/${tenantId}/${id}`)) {
          try {
            await store.delete(obj.key);
          } catch (err) {
            if (err instanceof ObjectLockedError) locked = true;
            else throw err;
          }
        }
      }
      if (locked) {
        waiting++;
        continue;
      }
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('backup_copies').set({ state: 'deleted', checked_at: now }).where('backup_id', '=', id).execute();
        await repo.setState(id, ['complete', 'incomplete', 'failed'], { state: 'pruned', pruned_at: now }, trx);
      });
      pruned++;
    }
    return { kept: plan.keep.size, pruned, waiting };
  }

  /** This tenant's minute in the daily window (stable, spread by its id). */
  function slotOf(tenantId: string, day: string): Date {
    const hash = parseInt(tenantId.replace(/-/g, '').slice(0, 8), 16);
    const minutes = settings.windowStartHour * 60 + (hash % (settings.windowHours * 60));
    return parisTime(day, minutes);
  }

  /**
   * Tenants due for their scheduled backup at `now` (BKP-1): their minute of today has passed and
   * nothing complete, incomplete or running was started since; a tenant whose minute of today
   * has not come yet but that has no backup in the last 24 h is due too (a missed day is caught up).
   */
  async function dueTenants(now: Date): Promise<string[]> {
    const today = parisDate(now);
    const since = new Date(now.getTime() - 2 * DAY_MS);
    // Grouped once: the schedule runs every minute over every tenant.
    const recent = Map.groupBy(await repo.recentByTenant(since), (r) => r.tenant_id);
    const due: string[] = [];
    for (const { id } of await repo.liveTenants()) {
      const mine = recent.get(id) ?? [];
      const slot = slotOf(id, today);
      const from = slot <= now ? slot : new Date(now.getTime() - DAY_MS);
      const covered = mine.some((r) => r.started_at >= from && ['complete', 'incomplete', 'running'].includes(r.state));
      // A failure is retried, but not more than once every 30 minutes.
      const recentFailure = mine.some((r) => r.state === 'failed' && r.started_at > new Date(now.getTime() - 30 * 60_000));
      if (!covered && !recentFailure) due.push(id);
    }
    return due;
  }

  /** On-demand backups of the customer (BKP-5), limited per Paris day. */
  async function takeOnDemand(tenantId: string, actor: BackupActor): Promise<BackupRow> {
    const now = clock.now();
    const dayStart = parisTime(parisDate(now), 0);
    const used = await repo.countSince(tenantId, dayStart, ['on_demand'], ['running', 'complete', 'incomplete', 'pruned']);
    if (used >= settings.onDemandPerDay) {
      throw tooManyRequests('backup_quota_exceeded', `At most ${settings.onDemandPerDay} on-demand backups per tenant per day.`, Math.ceil((parisTime(parisDate(new Date(dayStart.getTime() + 36 * 3_600_000)), 0).getTime() - now.getTime()) / 1000));
    }
    return take(tenantId, { trigger: 'on_demand', actor });
  }

  /** The backup taken right before a rollout updates a tenant database (TEN-6); throws unless complete. */
  async function beforeUpgrade(tenantDatabaseId: string): Promise<void> {
    const tenantId = await repo.tenantOfDatabase(tenantDatabaseId);
    if (!tenantId) return; // a warm-pool database holds no data
    const backup = await take(tenantId, { trigger: 'pre_upgrade', actor: { type: 'system' } });
    if (backup.state !== 'complete') throw new AppError(503, 'backup_failed', `the backup before the update is ${backup.state}: ${backup.error ?? ''}`.trim());
  }

  return { take, takeOnDemand, verify, verifyNext, repair, applyRetention, dueTenants, beforeUpgrade, reader, workerId };
}

/** The instant of `minutes` after midnight of the Paris day `day` (YYYY-MM-DD), across DST. */
export function parisTime(day: string, minutes: number): Date {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  // Start from the UTC instant with those wall-clock fields, then correct by Paris's offset then.
  const guess = Date.UTC(y, m - 1, d, 0, minutes);
  const offsetAt = (t: number) => {
    const parts = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', hour12: false, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(new Date(t));
    const get = (type: string) => Number(parts.find((p) => p.type === type)!.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour') % 24, get('minute')) - t;
  };
  const first = guess - offsetAt(guess);
  return new Date(guess - offsetAt(first));
}

export type BackupsService = ReturnType<typeof createBackupsService>;
export type { CopyRow };
