/**
 * Composition root of the deletion module (TEN-3 cancel → destroy path, TEN-4, TEN-5, BKP-7):
 * cancellation with a grace period, reactivation, destruction (after the grace period or at
 * once), the deletion certificate, and the purge of a destroyed tenant's backups
 * (crypto-shredding, then deletion once object locks allow).
 *
 *   deletion-service.ts       rules and authorization (cancel, reactivate, destroy now, certificate)
 *   deletion-jobs.ts          the background work, each a function of (deps, now); crash-safe steps
 *   deletion-certificate.ts   the certificate's model and its text/HTML forms in FR/EN
 *   deletion-routes.ts, deletion-repo.ts, deletion-tables.ts
 *
 * Background work of a node (`start`, every `deletion.tickMs`): `runDeletionJobs(deps, now)`.
 */
import path from 'node:path';
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import { storageRoot } from '../../config/config.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import type { BackupsModule } from '../backups/index.ts';
import type { FleetModule } from '../fleet/index.ts';
import type { TenantsModule } from '../tenants/index.ts';
import { runDeletionJobs, type DeletionDeps, type DeletionRunReport } from './deletion-jobs.ts';
import { createDeletionRepo } from './deletion-repo.ts';
import { createDeletionService, type DeletionService } from './deletion-service.ts';

export type { DeletionService, DeletionRunReport };
export type { DeletionCertificate } from './deletion-certificate.ts';
export type { CancelCause, DestructionRule } from './deletion-tables.ts';

export interface DeletionModule extends HavreModule {
  service: DeletionService;
  /** One pass of the background work at the clock's `now` (tests, and the loop). */
  run(): Promise<DeletionRunReport>;
}

export function createDeletionModule(
  core: Core,
  deps: { fleet: Pick<FleetModule, 'databases' | 'connections'>; tenants: Pick<TenantsModule, 'service'>; backups: Pick<BackupsModule, 'stores' | 'keys'> },
): DeletionModule {
  const { db, clock, config, logger } = core;
  const jobDeps: DeletionDeps = {
    db,
    repo: createDeletionRepo(db),
    clock,
    audit: core.audit,
    logger,
    fleet: deps.fleet,
    tenants: deps.tenants.service,
    files: createFsStorage(storageRoot(config)),
    exportsRoot: path.join(config.home, 'exports'),
    backups: deps.backups,
    settings: config.deletion,
  };
  const service = createDeletionService({ ...jobDeps, tenants: deps.tenants.service });
  const run = () => runDeletionJobs(jobDeps, clock.now());

  return {
    routes: lazyRoutes(async () => (await import('./deletion-routes.ts')).deletionRoutes(service)),
    service,
    run,
    start: () => {
      let running: Promise<unknown> | null = null;
      const timer = setInterval(() => {
        if (running) return;
        running = run()
          .catch((err: unknown) => logger.warn({ err }, 'deletion pass failed'))
          .finally(() => (running = null));
      }, config.deletion.tickMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
