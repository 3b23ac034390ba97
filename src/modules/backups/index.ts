/**
 * Composition root of the backups module (BKP-1..7): daily, encrypted, write-once backups of every
 * tenant in every configured location, each verified, listed, downloaded and restored self-service.
 *
 *   backup-crypto.ts     the encrypted chunk format and per-tenant keys' context (docs/BACKUPS.md)
 *   backup-keys.ts       each tenant's data key, wrapped by the master key, escrowed per location
 *   backup-writer.ts     one backup: snapshot → pg_dump + files tar → encrypt → every location → read back
 *   backup-reader.ts     a good copy → decrypt → pg_restore / files; comparison with the manifest
 *   backups-service.ts   take, verify, repair, retention (retention.ts, BKP-2), schedule
 *   backup-restore.ts    restore into a new tenant or in place, never half
 *   backup-download.ts   signed links and the downloadable archive
 *   backup-alerts.ts     operator alerts (mail, metric, audit)
 *   backups-routes.ts, backups-presenters.ts, backups-cli.ts, backups-repo.ts, backups-tables.ts
 *
 * Background work of a node (`start`, every `backups.tickMs`): abandoned backups and restores are
 * closed, due tenants are backed up, incomplete backups repaired, complete ones verified, and
 * retention applied once a day per tenant.
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import { backupLocationRoot, storageRoot } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { createLockedFsStore } from '../../lib/storage/locked-fs-store.ts';
import { createLazyS3Store } from '../../lib/storage/lazy-s3-store.ts';
import type { Config } from '../../config/config.ts';
import type { FleetModule } from '../fleet/index.ts';
import type { TenantsModule } from '../tenants/index.ts';
import type { WorkspaceModule } from '../workspace/index.ts';
import { createBackupAlerts } from './backup-alerts.ts';
import { downloadArchive, openDownload, signDownload } from './backup-download.ts';
import { createBackupKeys, type BackupKeys } from './backup-keys.ts';
import { createBackupRestore, type BackupRestore } from './backup-restore.ts';
import { createBackupsRepo, type BackupRow, type BackupsRepo } from './backups-repo.ts';
import { createBackupsService, type BackupActor, type BackupsService } from './backups-service.ts';
import { notFound } from '../../lib/errors.ts';

export type { BackupsService, BackupActor, BackupRestore };

/** What the routes and the CLI need. */
export interface BackupsModuleApi {
  db: Db;
  repo: BackupsRepo;
  service: BackupsService;
  restore: BackupRestore;
  stores: readonly BackupStore[];
  /** Tenants' data keys (the deletion module shreds them, BKP-7). */
  keys: BackupKeys;
  downloadLink(backup: BackupRow, userId: string, actor: BackupActor): Promise<{ url: string; expiresAt: string }>;
  download(token: string, locale: 'fr' | 'en', ip: string | null): Promise<{ stream: NodeJS.ReadableStream; fileName: string }>;
}

export interface BackupsModule extends HavreModule, BackupsModuleApi {
  /** Checks every location (writable; S3: Object Lock enabled); throws a message naming the first bad one. */
  checkLocations(): Promise<void>;
  /** One pass of the background work at `now` (tests and `havre backup run --due` call it). */
  tick(): Promise<{ backedUp: number; verified: number; repaired: number; abandoned: number }>;
}

/** The configured locations (BKP-3), each behind the write-once interface. */
export function backupStores(config: Config, clock: Clock): BackupStore[] {
  return config.backups.locations.map((loc) =>
    loc.driver === 'fs'
      ? createLockedFsStore({ name: loc.name, root: backupLocationRoot(config, loc), clock })
      : createLazyS3Store({ name: loc.name, bucket: loc.bucket, ...(loc.prefix && { prefix: loc.prefix }), clock, settings: loc }),
  );
}

export function createBackupsModule(
  core: Core,
  deps: { fleet: Pick<FleetModule, 'connections' | 'databases' | 'scratch'>; tenants: Pick<TenantsModule, 'service'>; workspace: Pick<WorkspaceModule, 'upgrade'> },
  options: { stores?: BackupStore[] } = {},
): BackupsModule {
  const { db, clock, config, logger } = core;
  const stores = options.stores ?? backupStores(config, clock);
  const repo = createBackupsRepo(db);
  const files = createFsStorage(storageRoot(config));
  const keys = createBackupKeys({ db, secrets: core.secrets, clock, stores });
  const alerts = createBackupAlerts({ db, mailer: core.mailer, audit: core.audit, registry: core.metrics.registry });
  const service = createBackupsService({
    db, repo, clock, audit: core.audit, alerts, keys, stores, logger, settings: config.backups, fleet: deps.fleet, activity: core.activity,
    writer: { stores, files, withTenant: (id, fn) => deps.fleet.connections.withTenant(id, fn), target: (id) => deps.fleet.connections.target(id), compression: config.backups.compression },
  });
  const restore = createBackupRestore({ db, repo, clock, audit: core.audit, logger, service, fleet: deps.fleet, tenants: deps.tenants.service, workspace: deps.workspace, files });

  const api: BackupsModuleApi = {
    db, repo, service, restore, stores, keys,
    async downloadLink(backup, userId, actor) {
      const expiresAt = clock.now().getTime() + config.backups.downloadLinkMinutes * 60_000;
      const token = signDownload(core.secrets, { backupId: backup.id, tenantId: backup.tenant_id, userId, expiresAt });
      await core.audit.record({ actorType: actor.type, actorId: actor.id ?? null, ip: actor.ip ?? null, action: 'backup.download_link', subjectType: 'backup', subjectId: backup.id, data: { tenantId: backup.tenant_id } });
      return { url: `/api/v1/backup-downloads?token=${encodeURIComponent(token)}`, expiresAt: new Date(expiresAt).toISOString() };
    },
    async download(token, locale, ip) {
      const claim = openDownload(core.secrets, token, clock.now());
      const backup = await repo.get(claim.backupId);
      if (!backup || backup.state !== 'complete' || backup.tenant_id !== claim.tenantId) throw notFound('backup_not_found', 'No such backup.');
      const stream = await downloadArchive(service.reader, backup, await repo.copies(backup.id), locale);
      await core.audit.record({ actorType: 'user', actorId: claim.userId, ip, action: 'backup.downloaded', subjectType: 'backup', subjectId: backup.id, data: { tenantId: backup.tenant_id } });
      return { stream, fileName: `havre-backup-${backup.tenant_id}-${(backup.taken_at ?? backup.started_at).toISOString().slice(0, 10)}.tar` };
    },
  };

  let lastRetention = new Map<string, string>();
  async function tick() {
    const now = clock.now();
    const abandoned = (await repo.failAbandoned(new Date())).length + (await restore.sweep());
    // Scratch databases of verifications that died with their node.
    await deps.fleet.scratch.sweep(new Date(Date.now() - 6 * 3_600_000)).catch((err: unknown) => logger.warn({ err }, 'scratch sweep failed'));
    let backedUp = 0;
    // `backups.concurrency` tenants at a time on this node (each tenant is claimed by its row, so
    // other nodes running the same pass take the others).
    const due = await service.dueTenants(now);
    const worker = async () => {
      for (let tenantId = due.shift(); tenantId !== undefined; tenantId = due.shift()) {
        try {
          await service.take(tenantId, { trigger: 'scheduled', actor: { type: 'system' } });
          backedUp++;
        } catch (err) {
          logger.warn({ err, tenantId }, 'scheduled backup not taken');
        }
      }
    };
    await Promise.all(Array.from({ length: config.backups.concurrency }, worker));
    const repaired = await service.repair();
    let verified = 0;
    while (await service.verifyNext()) verified++;
    const today = now.toISOString().slice(0, 10);
    for (const tenantId of await repo.tenantsWithBackups()) {
      if (lastRetention.get(tenantId) === today) continue;
      await service.applyRetention(tenantId).catch((err: unknown) => logger.warn({ err, tenantId }, 'retention failed'));
      lastRetention.set(tenantId, today);
    }
    if (lastRetention.size > 100_000) lastRetention = new Map();
    return { backedUp, verified, repaired, abandoned };
  }

  return {
    ...api,
    routes: lazyRoutes(async () => (await import('./backups-routes.ts')).backupsRoutes(api)),
    tick,
    async checkLocations() {
      for (const store of stores) {
        await store.check().catch((err: unknown) => {
          throw new Error(`backup location "${store.name}" (${store.driver}) cannot be used: ${(err as Error).message}`);
        });
      }
    },
    start: () => {
      let running: Promise<unknown> | null = null;
      const timer = setInterval(() => {
        if (running) return;
        running = tick()
          .catch((err: unknown) => logger.warn({ err }, 'backup tick failed'))
          .finally(() => (running = null));
      }, config.backups.tickMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
    async readiness() {
      const checks = await Promise.all(stores.map((s) => s.check().then(() => true, () => false)));
      return { backups: checks.every(Boolean) };
    },
  };
}
