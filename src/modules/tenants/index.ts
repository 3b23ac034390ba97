/**
 * Composition root of the tenants module: the repository, the service (creation, lifecycle) and
 * the routes, built from the parts of the core they need and the fleet (tenant databases).
 *
 *   tenant-states.ts        TEN-3: the one table of allowed transitions
 *   tenants-repo.ts         SQL only (compare-and-set transition), optional transaction everywhere
 *   tenants-service.ts      rules: who may create where, idempotent creation, recorded transitions
 *   tenants-routes.ts       /api/v1/tenants… and /api/v1/admin/tenants…
 *   tenants-presenters.ts   whitelisted views (API, CLI) and their schemas
 *   tenants-cli.ts          `havre tenant list|show|create|suspend|resume`
 */
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import type { FleetModule } from '../fleet/index.ts';
import { createTenantsRepo } from './tenants-repo.ts';
import { invalidating } from '../../http/auth-cache.ts';
import { createTenantsService, type TenantsService } from './tenants-service.ts';

export type { TenantsService };
export type { TenantActor, CreateTenantInput, TransitionOptions } from './tenants-service.ts';
export type { TenantState } from './tenant-states.ts';

export interface TenantsModule extends HavreModule {
  service: TenantsService;
}

export function createTenantsModule(core: Core, deps: { fleet: Pick<FleetModule, 'databases'> }): TenantsModule {
  const service = createTenantsService({
    db: core.db,
    // A state change or a new database must reach the workspace path of this node at once.
    repo: invalidating(createTenantsRepo(core.db), ['transition', 'setDatabase', 'switchDatabase'], core.authCache.forgetAll),
    clock: core.clock,
    audit: core.audit,
    fleet: deps.fleet,
    settings: core.config.tenants,
  });
  return { routes: lazyRoutes(async () => (await import('./tenants-routes.ts')).tenantsRoutes(service)), service };
}
