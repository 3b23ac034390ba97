/**
 * How the domain modules are built from the core and from each other, written once and used two
 * ways:
 *
 * - `buildModules(core, code)` with the code of every module: `createModules` (app.ts) imports
 *   it all statically, for the server, the tests and the benchmarks;
 * - `loadModules(core, names)`: a CLI command imports only the code of the modules it uses and of
 *   those they are built from, and builds just those. `havre backup list` then loads neither
 *   billing (pdfkit), payments (Stripe, GoCardless) nor the HTTP server, whose code and libraries
 *   are most of an idle process's memory.
 */
import type { Core } from './core.ts';
import type * as accounts from './modules/accounts/index.ts';
import type * as accountsRetention from './modules/accounts/accounts-retention.ts';
import type * as backups from './modules/backups/index.ts';
import type * as billing from './modules/billing/index.ts';
import type * as deletion from './modules/deletion/index.ts';
import type * as fleet from './modules/fleet/index.ts';
import type * as mailRetention from './modules/mail/mail-retention.ts';
import type * as metering from './modules/metering/index.ts';
import type * as payments from './modules/payments/index.ts';
import type * as portability from './modules/portability/index.ts';
import type * as retention from './modules/retention/index.ts';
import type * as rollouts from './modules/rollouts/index.ts';
import type * as tenants from './modules/tenants/index.ts';
import type * as workspace from './modules/workspace/index.ts';

export interface Modules {
  accounts: accounts.AccountsModule;
  fleet: fleet.FleetModule;
  tenants: tenants.TenantsModule;
  workspace: workspace.WorkspaceModule;
  rollouts: rollouts.RolloutsModule;
  backups: backups.BackupsModule;
  portability: portability.PortabilityModule;
  deletion: deletion.DeletionModule;
  retention: retention.RetentionModule;
  metering: metering.MeteringModule;
  billing: billing.BillingModule;
  payments: payments.PaymentsModule;
}

export type ModuleName = keyof Modules;

/** The code a module is built from: its composition root (`index.ts`), plus what its wiring passes on. */
export interface ModuleCode {
  accounts: typeof accounts;
  /** With the retention categories of the modules that own data under its rules. */
  retention: typeof retention & typeof accountsRetention & typeof mailRetention;
  fleet: typeof fleet;
  tenants: typeof tenants;
  workspace: typeof workspace;
  backups: typeof backups;
  rollouts: typeof rollouts;
  deletion: typeof deletion;
  portability: typeof portability;
  metering: typeof metering;
  billing: typeof billing;
  payments: typeof payments;
}

interface Wiring<K extends ModuleName> {
  /** The modules whose code `build` uses; those it is built from (`built.<name>`) come before it in WIRING. */
  uses: readonly ModuleName[];
  build(code: ModuleCode, core: Core, built: Modules): Modules[K];
}

/** Every module, in build order (also the order of their routes and background work in app.ts). */
const WIRING: { [K in ModuleName]: Wiring<K> } = {
  accounts: { uses: [], build: (c, core) => c.accounts.createAccountsModule(core) },
  // Every new tenant database gets the latest workspace schema before it joins the warm pool (the
  // workspace's code only: the fleet is built before the workspace module, which uses it).
  fleet: { uses: ['workspace'], build: (c, core) => c.fleet.createFleetModule(core, { initializeDatabase: c.workspace.workspaceInitializer(core.clock) }) },
  tenants: { uses: ['fleet'], build: (c, core, m) => c.tenants.createTenantsModule(core, { fleet: m.fleet }) },
  workspace: { uses: ['fleet'], build: (c, core, m) => c.workspace.createWorkspaceModule(core, { fleet: m.fleet }) },
  // Daily, encrypted, write-once backups in every location (BKP-1..7).
  backups: { uses: ['fleet', 'tenants', 'workspace'], build: (c, core, m) => c.backups.createBackupsModule(core, { fleet: m.fleet, tenants: m.tenants, workspace: m.workspace }) },
  // Workspace schema updates to every tenant database (TEN-6, SEC-5), each after its backup.
  rollouts: {
    uses: ['workspace', 'backups'],
    build: (c, core, m) => c.rollouts.createRolloutsModule(core, { workspace: m.workspace }, { beforeUpgrade: (id) => m.backups.service.beforeUpgrade(id) }),
  },
  // PRV-4: the retention engine; each module registers the SQL of its rules (later ones: `retention.registry.register`).
  retention: {
    uses: [],
    build: (c, core) => c.retention.createRetentionModule(core, { categories: [...c.retention.accountsRetentionCategories(), ...c.retention.mailRetentionCategories()] }),
  },
  // Cancel → grace period → destroy, the deletion certificate, the 12-month backup purge (TEN-3..5, BKP-7).
  deletion: { uses: ['fleet', 'tenants', 'backups'], build: (c, core, m) => c.deletion.createDeletionModule(core, { fleet: m.fleet, tenants: m.tenants, backups: m.backups }) },
  // Export and import of whole tenants (EXP-1..3).
  portability: { uses: ['fleet', 'workspace'], build: (c, core, m) => c.portability.createPortabilityModule(core, { fleet: m.fleet, workspace: m.workspace }) },
  // Hourly usage samples and the usage API (MET-1..3).
  metering: { uses: ['fleet'], build: (c, core, m) => c.metering.createMeteringModule(core, { fleet: m.fleet }) },
  // Subscriptions, invoices and their PDFs, price changes, the daily billing run (BIL-1..9, BIL-12).
  billing: { uses: ['metering'], build: (c, core, m) => c.billing.createBillingModule(core, { metering: m.metering }) },
  // Payments (bank transfer, Stripe, GoCardless) and dunning: reminders, suspension, surcharge (BIL-10, BIL-11).
  payments: { uses: ['tenants', 'deletion', 'billing'], build: (c, core, m) => c.payments.createPaymentsModule(core, { tenants: m.tenants, deletion: m.deletion, billing: m.billing }) },
};

/** Every module name, in build order. */
export const MODULE_NAMES = Object.keys(WIRING) as ModuleName[];

/** Imports of each module's code, for `loadModules`. */
const LOADERS: { [K in ModuleName]: () => Promise<ModuleCode[K]> } = {
  accounts: () => import('./modules/accounts/index.ts'),
  retention: async () => ({
    ...(await import('./modules/retention/index.ts')),
    ...(await import('./modules/accounts/accounts-retention.ts')),
    ...(await import('./modules/mail/mail-retention.ts')),
  }),
  fleet: () => import('./modules/fleet/index.ts'),
  tenants: () => import('./modules/tenants/index.ts'),
  workspace: () => import('./modules/workspace/index.ts'),
  backups: () => import('./modules/backups/index.ts'),
  rollouts: () => import('./modules/rollouts/index.ts'),
  deletion: () => import('./modules/deletion/index.ts'),
  portability: () => import('./modules/portability/index.ts'),
  metering: () => import('./modules/metering/index.ts'),
  billing: () => import('./modules/billing/index.ts'),
  payments: () => import('./modules/payments/index.ts'),
};

/** Builds, in order, each module whose code is given; the code of the modules it uses must be given too. */
export function buildModules<K extends ModuleName>(core: Core, code: Pick<ModuleCode, K>): Pick<Modules, K> {
  const built: Partial<Modules> = {};
  for (const name of MODULE_NAMES) {
    if (!(name in code)) continue;
    const wiring = WIRING[name] as Wiring<ModuleName>;
    for (const used of wiring.uses) if (!(used in code)) throw new Error(`module ${name} is built with ${used}, whose code was not given`);
    (built as Record<ModuleName, unknown>)[name] = wiring.build(code as ModuleCode, core, built as Modules);
  }
  return built as Pick<Modules, K>;
}

/** `names` and every module they use, directly or not. */
function withUsed(names: readonly ModuleName[]): ModuleName[] {
  const all = new Set<ModuleName>();
  const visit = (name: ModuleName): void => {
    if (all.has(name)) return;
    all.add(name);
    for (const used of WIRING[name].uses) visit(used);
  };
  for (const name of names) visit(name);
  return [...all];
}

/**
 * Imports the code of `names` (and of the modules they use) and builds those modules only. The
 * result holds `names` and may hold more; its type says what the caller asked for.
 */
export async function loadModules<K extends ModuleName>(core: Core, names: readonly K[]): Promise<Pick<Modules, K>> {
  const code = Object.fromEntries(await Promise.all(withUsed(names).map(async (name) => [name, await LOADERS[name]()] as const)));
  return buildModules(core, code as Pick<ModuleCode, K>);
}
