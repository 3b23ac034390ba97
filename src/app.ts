/**
 * The composition root: builds the shared core (database, clock, secrets, logger, metrics, audit,
 * mailer), then each domain module from it, then the HTTP server. Each module has its own small
 * composition function (`create<Module>Module`), so this file stays a table of contents.
 */
import pino, { type Logger } from 'pino';
import { sql } from 'kysely';
import type { Config } from './config/config.ts';
import { createDb, type Db } from './db/db.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { createSecretBox, type SecretBox } from './lib/crypto.ts';
import { buildServer, type RoutePlugin } from './http/server.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createAuthCache, type AuthCache } from './http/auth-cache.ts';
import { createAuditService, type AuditService } from './modules/audit/audit-service.ts';
import { createMailer, type Mailer } from './modules/mail/mail-service.ts';
import type { FastifyInstance } from 'fastify';
import { createAccountsModule, type AccountsModule } from './modules/accounts/index.ts';
import { createFleetModule, type FleetModule } from './modules/fleet/index.ts';
import { createTenantsModule, type TenantsModule } from './modules/tenants/index.ts';
import { createWorkspaceModule, workspaceInitializer, type WorkspaceModule } from './modules/workspace/index.ts';
import { createRolloutsModule, type RolloutsModule } from './modules/rollouts/index.ts';
import { createBackupsModule, type BackupsModule } from './modules/backups/index.ts';
import { createMeteringModule, type MeteringModule } from './modules/metering/index.ts';
import { createCpuAttribution, type CpuAttribution } from './modules/metering/cpu-attribution.ts';
import { createBillingModule, type BillingModule } from './modules/billing/index.ts';
import { createPaymentsModule, type PaymentsModule } from './modules/payments/index.ts';
import { createPortabilityModule, type PortabilityModule } from './modules/portability/index.ts';
import { createDeletionModule, type DeletionModule } from './modules/deletion/index.ts';
import { createRetentionModule, type RetentionModule } from './modules/retention/index.ts';
import { accountsRetentionCategories } from './modules/accounts/accounts-retention.ts';
import { mailRetentionCategories } from './modules/mail/mail-retention.ts';

/** What every module may depend on. Modules take the parts they need, not the whole core. */
export interface Core {
  config: Config;
  db: Db;
  clock: Clock;
  secrets: SecretBox;
  logger: Logger;
  metrics: Metrics;
  audit: AuditService;
  mailer: Mailer;
  /** Hot-path authorization facts of this node (src/http/auth-cache.ts). */
  authCache: AuthCache;
  /** Which tenants this node is working for, to share its CPU among them (MET-1, metering/cpu-attribution.ts). */
  activity: CpuAttribution;
}

/**
 * The contract of a domain module: its HTTP routes, and optionally background work that a node
 * runs (`start` returns its stopper) and readiness checks.
 */
export interface HavreModule {
  routes: RoutePlugin;
  start?(): () => Promise<void>;
  readiness?(): Promise<Record<string, boolean>>;
}

export interface Modules {
  accounts: AccountsModule;
  fleet: FleetModule;
  tenants: TenantsModule;
  workspace: WorkspaceModule;
  rollouts: RolloutsModule;
  backups: BackupsModule;
  portability: PortabilityModule;
  deletion: DeletionModule;
  retention: RetentionModule;
  metering: MeteringModule;
  billing: BillingModule;
  payments: PaymentsModule;
}

/** Builds every domain module, each from the parts of the core (and other modules) it needs. */
export function createModules(core: Core): Modules {
  const accounts = createAccountsModule(core);
  // PRV-4: the retention engine; each module registers the SQL of its rules (later ones: `retention.registry.register`).
  const retention = createRetentionModule(core, { categories: [...accountsRetentionCategories(), ...mailRetentionCategories()] });
  // Every new tenant database gets the latest workspace schema before it joins the warm pool.
  const fleet = createFleetModule(core, { initializeDatabase: workspaceInitializer(core.clock) });
  const tenants = createTenantsModule(core, { fleet });
  const workspace = createWorkspaceModule(core, { fleet });
  // Daily, encrypted, write-once backups in every location (BKP-1..7).
  const backups = createBackupsModule(core, { fleet, tenants, workspace });
  // Workspace schema updates to every tenant database (TEN-6, SEC-5), each after its backup.
  const rollouts = createRolloutsModule(core, { workspace }, { beforeUpgrade: (id) => backups.service.beforeUpgrade(id) });
  // Cancel → grace period → destroy, the deletion certificate, the 12-month backup purge (TEN-3..5, BKP-7).
  const deletion = createDeletionModule(core, { fleet, tenants, backups });
  // Export and import of whole tenants (EXP-1..3).
  const portability = createPortabilityModule(core, { fleet, workspace });
  // Hourly usage samples and the usage API (MET-1..3).
  const metering = createMeteringModule(core, { fleet });
  // Subscriptions, invoices and their PDFs, price changes, the daily billing run (BIL-1..9, BIL-12).
  const billing = createBillingModule(core, { metering });
  // Payments (bank transfer, Stripe, GoCardless) and dunning: reminders, suspension, surcharge (BIL-10, BIL-11).
  const payments = createPaymentsModule(core, { tenants, deletion, billing });
  return { accounts, fleet, tenants, workspace, backups, rollouts, retention, deletion, portability, metering, billing, payments };
}

export interface App {
  core: Core;
  modules: Modules;
  http: FastifyInstance;
  /** Starts background work of this node (mail delivery, warm-pool refill…). */
  startBackground(): void;
  close(): Promise<void>;
}

export function createLogger(config: Config): Logger {
  return pino({
    level: config.log.level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.masterKey'], censor: '[redacted]' },
    serializers: {
      // The route pattern only: raw URLs may carry one-time tokens.
      req: (req: { method: string; routeOptions?: { url?: string }; id: string }) => ({ method: req.method, route: req.routeOptions?.url ?? 'unmatched', id: req.id }),
    },
  });
}

export function createCore(config: Config, options: { db?: Db; clock?: Clock; logger?: Logger } = {}): Core {
  if (!config.databaseUrl && !options.db) throw new Error('createCore needs config.databaseUrl (or an embedded database started by `havre start`)');
  if (!config.masterKey) throw new Error('createCore needs config.masterKey');
  const db = options.db ?? createDb(config.databaseUrl!);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  return {
    config,
    db,
    clock,
    secrets: createSecretBox(config.masterKey),
    logger,
    metrics: createMetrics(),
    audit: createAuditService({ db, clock }),
    authCache: createAuthCache({ ttlMs: config.auth.cacheMs }),
    activity: createCpuAttribution(performance.now()),
    mailer: createMailer({ db, clock, from: config.mail.from, smtpUrl: config.mail.smtpUrl, onError: (err) => logger.warn({ err }, 'mail delivery failed') }),
  };
}

export async function createApp(core: Core): Promise<App> {
  const modules = createModules(core);
  const named: [string, HavreModule][] = Object.entries(modules);
  const list = named.map(([, m]) => m);
  const routes: RoutePlugin[] = list.map((m) => m.routes);
  const stoppers: (() => Promise<void>)[] = [];

  const http = await buildServer(
    {
      config: core.config,
      db: core.db,
      clock: core.clock,
      logger: core.logger,
      metrics: core.metrics,
      authCache: core.authCache,
      tenantActivity: (id) => core.activity.begin(id),
      readiness: async () => {
        const database = await sql`SELECT 1`.execute(core.db).then(() => true, () => false);
        const checks: Record<string, boolean> = { database };
        if (database) for (const [name, m] of named) Object.assign(checks, await m.readiness?.().catch(() => ({ [name]: false })));
        return checks;
      },
    },
    routes,
  );

  return {
    core,
    modules,
    http,
    startBackground() {
      stoppers.push(core.mailer.startDelivery());
      for (const m of list) if (m.start) stoppers.push(m.start());
    },
    async close() {
      await http.close();
      for (const stop of stoppers.splice(0)) await stop();
      // Tenant connection pools exist whether or not background work was started.
      await modules.fleet.connections.closeAll();
      await core.db.destroy();
    },
  };
}
