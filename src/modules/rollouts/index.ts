/**
 * Composition root of the rollouts module: workspace schema updates rolled out to every tenant
 * database (TEN-6) and security releases with their 5-business-day report (SEC-5).
 *
 *   rollouts-service.ts     the engine: create (release, items, maintenance notices), run (batches, leases, retries)
 *   rollouts-security.ts    written deferral requests and the per-tenant release report (SEC-5)
 *   rollouts-repo.ts        SQL only; rollouts-tables.ts: Kysely types
 *   rollouts-mails.ts       the maintenance notice (FR/EN)
 *   rollouts-presenters.ts  API views and CLI text; rollouts-routes.ts: /api/v1/admin/rollouts…
 *   rollouts-cli.ts         `havre rollout [status|report|defer]`
 *
 * Background work of a node (`start`): every minute, the running rollouts that have something to
 * do now (a notice period over, a retry due, a dead worker's lease expired) are resumed here, so
 * nobody has to run `havre rollout` again by hand.
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import { WORKSPACE_MIGRATIONS, type TenantMigration } from '../workspace/tenant-schema.ts';
import type { WorkspaceModule } from '../workspace/index.ts';
import { createRolloutsRepo } from './rollouts-repo.ts';
import { createSecurityService, type SecurityService } from './rollouts-security.ts';
import { createRolloutService, type RolloutDeps, type RolloutService } from './rollouts-service.ts';

export type { RolloutService, SecurityService };
export type { RolloutProgress, RunOutcome, CreateResult, RolloutActor } from './rollouts-service.ts';

export interface RolloutsModule extends HavreModule {
  service: RolloutService;
  security: SecurityService;
  /** Runs a rollout on this node in the background (nothing when this node already runs it). */
  runInBackground(rolloutId: string): void;
  /** Starts, in the background, every running rollout with work due now that this node is not running; returns their ids. */
  resumeDue(): Promise<string[]>;
  /** Resolves once every background run of this node has returned. */
  idle(): Promise<void>;
}

export interface RolloutsOptions extends Partial<Pick<RolloutDeps, 'beforeUpgrade' | 'sleep' | 'retryDelayMs' | 'leaseMs' | 'workerId'>> {
  /** The workspace schema to roll out (default: the one this Havre ships; tests pass their own). */
  migrations?: readonly TenantMigration[];
  /** How often `start` looks for due rollouts (default 1 min). */
  resumeIntervalMs?: number;
}

export function createRolloutsModule(core: Core, deps: { workspace: Pick<WorkspaceModule, 'upgrade'> }, options: RolloutsOptions = {}): RolloutsModule {
  const repo = createRolloutsRepo(core.db);
  const { migrations = WORKSPACE_MIGRATIONS, resumeIntervalMs = 60_000, ...engine } = options;
  const service = createRolloutService({
    db: core.db,
    repo,
    clock: core.clock,
    audit: core.audit,
    mailer: core.mailer,
    logger: core.logger,
    settings: core.config.workspace.rollout,
    migrations,
    upgrade: (id, o) => deps.workspace.upgrade(id, o),
    ...engine,
  });
  const security = createSecurityService({ db: core.db, repo, clock: core.clock, audit: core.audit });

  const stopping = new AbortController();
  const active = new Map<string, Promise<void>>();
  function runInBackground(rolloutId: string): void {
    if (active.has(rolloutId) || stopping.signal.aborted) return;
    const log = core.logger.child({ rolloutId });
    const running = service
      .run(rolloutId, { signal: stopping.signal, onProgress: (p) => log.info({ batch: p.batch, ...p.counts }, 'rollout progress') })
      .then((o) => log.info({ status: o.status, state: o.rollout.state, waitingUntil: o.waitingUntil, ...o.counts }, 'rollout run ended'))
      .catch((err: unknown) => log.error({ err }, 'rollout run failed'))
      .finally(() => active.delete(rolloutId));
    active.set(rolloutId, running);
  }
  async function resumeDue(): Promise<string[]> {
    const due = (await repo.dueRollouts(core.clock.now())).filter((r) => !active.has(r.id));
    for (const r of due) runInBackground(r.id);
    return due.map((r) => r.id);
  }
  async function idle(): Promise<void> {
    while (active.size > 0) await Promise.all(active.values());
  }

  return {
    routes: lazyRoutes(async () => (await import('./rollouts-routes.ts')).rolloutsRoutes({ service, security, runInBackground })),
    start: () => {
      const tick = () => void resumeDue().catch((err: unknown) => core.logger.warn({ err }, 'resuming due rollouts failed'));
      const timer = setInterval(tick, resumeIntervalMs);
      timer.unref();
      tick();
      return async () => {
        clearInterval(timer);
        // Runs stop between tenants; a tenant being upgraded finishes (or its lease lets another node take it).
        stopping.abort();
        await idle();
      };
    },
    service,
    security,
    runInBackground,
    resumeDue,
    idle,
  };
}
