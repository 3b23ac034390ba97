/** Composition root of the accounts module (being built: see docs/ARCHITECTURE.md). */
import type { Core, HavreModule } from '../../app.ts';

export type AccountsModule = HavreModule;

export function createAccountsModule(_core: Core): AccountsModule {
  return { routes: () => {} };
}
