/**
 * The composition root of a Havre node: the shared core (core.ts), every domain module wired as
 * wiring.ts says, and the HTTP server with the background work. Each module has its own small
 * composition function (`create<Module>Module`), so this file stays a table of contents.
 *
 * A CLI command builds only the modules it uses (`loadModules`, wiring.ts) and never loads this
 * file: it imports every module and the HTTP server.
 */
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import { buildServer, type RoutePlugin } from './http/server.ts';
import type { Core, HavreModule } from './core.ts';
import { buildModules, type ModuleCode, type Modules } from './wiring.ts';
import * as accounts from './modules/accounts/index.ts';
import * as accountsRetention from './modules/accounts/accounts-retention.ts';
import * as backups from './modules/backups/index.ts';
import * as billing from './modules/billing/index.ts';
import * as deletion from './modules/deletion/index.ts';
import * as fleet from './modules/fleet/index.ts';
import * as mailRetention from './modules/mail/mail-retention.ts';
import * as metering from './modules/metering/index.ts';
import * as payments from './modules/payments/index.ts';
import * as portability from './modules/portability/index.ts';
import * as retention from './modules/retention/index.ts';
import * as rollouts from './modules/rollouts/index.ts';
import * as tenants from './modules/tenants/index.ts';
import * as workspace from './modules/workspace/index.ts';

export { createCore, createLogger, type Core, type HavreModule } from './core.ts';
export type { Modules } from './wiring.ts';

const EVERY_MODULE: ModuleCode = {
  accounts,
  retention: { ...retention, ...accountsRetention, ...mailRetention },
  fleet,
  tenants,
  workspace,
  backups,
  rollouts,
  deletion,
  portability,
  metering,
  billing,
  payments,
};

/** Builds every domain module, each from the parts of the core (and other modules) it needs. */
export function createModules(core: Core): Modules {
  return buildModules(core, EVERY_MODULE);
}

export interface App {
  core: Core;
  modules: Modules;
  http: FastifyInstance;
  /** Starts background work of this node (mail delivery, warm-pool refill…). */
  startBackground(): void;
  close(): Promise<void>;
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
