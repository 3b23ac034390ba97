/** Composition root of the tenants module (being built: see docs/ARCHITECTURE.md). */
import type { Core, HavreModule } from '../../app.ts';

export type TenantsModule = HavreModule;

export function createTenantsModule(_core: Core, _deps: { fleet: import('../fleet/index.ts').FleetModule }): TenantsModule {
  return { routes: () => {} };
}
