/**
 * Composition root of the metering module (MET-1..3): hourly samples of every tenant's database
 * time, database size and file storage (metering-service.ts), the usage API, and the warnings.
 * Background work of a node (`start`): every 5 minutes, the current hour is sampled (once per
 * hour whichever node does it: the hour is the key).
 */
import { z } from 'zod';
import type { Core, HavreModule } from '../../core.ts';
import { storageRoot } from '../../config/config.ts';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { ALL_ROLES, authorizeMember } from '../accounts/membership.ts';
import { planByCode } from '../billing/plans.ts';
import type { FleetModule } from '../fleet/index.ts';
import { createMeteringService, type MeteringService } from './metering-service.ts';
import type { CpuAttribution } from './cpu-attribution.ts';

export interface MeteringModule extends HavreModule {
  service: MeteringService;
  /** Havre's CPU shared among the tenants whose requests it serves (cpu-attribution.ts). */
  attribution: CpuAttribution;
  /** One attribution step and flush at `now` (the loop does it; tests call it). */
  flushCpu(): Promise<number>;
}

const figures = z.object({ month: z.string(), cpuHours: z.number(), peakDatabaseBytes: z.number(), peakStorageBytes: z.number() });
const usageView = z.object({
  plan: z.object({ code: z.string(), cpuHours: z.number(), databaseBytes: z.number(), storageBytes: z.number() }).nullable(),
  current: figures.extend({ percentOfPlan: z.object({ cpu: z.number(), database: z.number(), storage: z.number() }).nullable() }),
  days: z.array(z.object({ day: z.string(), cpuHours: z.number(), peakDatabaseBytes: z.number(), peakStorageBytes: z.number() })),
  past: z.array(figures),
  measured: z.string().describe('What is counted, in words'),
});

const MEASURED =
  "cpuHours = database time + Havre's CPU. Database time: the time PostgreSQL spent executing this workspace's statements (pg_stat_database.active_time of its own database), sampled hourly — exact. Havre's CPU: every second, the CPU Havre's process used is shared among the workspaces whose requests were in progress, in proportion to how long they were — an estimate; CPU used with no workspace request in progress is counted for nobody. Sizes: peaks of the hourly samples of the database size and of the files stored.";

export function createMeteringModule(core: Core, deps: { fleet: Pick<FleetModule, 'usage'> }): MeteringModule {
  const plans = core.config.billing.plans;
  const service = createMeteringService({ db: core.db, fleet: deps.fleet, files: createFsStorage(storageRoot(core.config)), mailer: core.mailer, plans });
  const routes: RoutePlugin = (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/api/v1/tenants/:id/usage',
      { schema: { tags: ['metering'], summary: 'Usage of a tenant against its plan: days of this month, this month, past months', params: z.strictObject({ id: z.string().max(200) }), security: [{ session: [] }, { bearer: [] }], response: { 200: usageView } } },
      async (request) => {
        const principal = requireUser(request);
        const tenant = isUuid(request.params.id) ? await core.db.selectFrom('tenants').select(['id', 'customer_id', 'plan']).where('id', '=', request.params.id).executeTakeFirst() : undefined;
        if (!tenant) throw notFound('tenant_not_found');
        await authorizeMember(core.db, principal, tenant.customer_id, ALL_ROLES, 'tenant_not_found');
        const plan = tenant.plan ? planByCode(plans, tenant.plan) : undefined;
        const u = await service.usage(tenant.id, plan, core.clock.now());
        const pct = (a: number, b: number) => Math.round((a / b) * 1000) / 10;
        return {
          plan: plan ? { code: plan.code, cpuHours: plan.cpuHours, databaseBytes: plan.databaseBytes, storageBytes: plan.storageBytes } : null,
          current: { ...u.current, percentOfPlan: plan ? { cpu: pct(u.current.cpuHours, plan.cpuHours), database: pct(u.current.peakDatabaseBytes, plan.databaseBytes), storage: pct(u.current.peakStorageBytes, plan.storageBytes) } : null },
          days: u.days,
          past: u.past,
          measured: MEASURED,
        };
      },
    );
  };
  const attribution = core.activity;
  let lastCpu = process.cpuUsage();
  /** Shares the process CPU used since the last call among the tenants served meanwhile, and records it. */
  async function flushCpu(): Promise<number> {
    const used = process.cpuUsage(lastCpu);
    lastCpu = process.cpuUsage();
    attribution.tick(performance.now(), (used.user + used.system) / 1000);
    return service.addHavreCpu(attribution.drain(), core.clock.now());
  }
  return {
    routes,
    service,
    attribution,
    flushCpu,
    start: () => {
      // CPU attribution every second, written every minute (a crash loses at most that minute).
      let pending = new Map<string, number>();
      let seconds = 0;
      const cpuTimer = setInterval(() => {
        const used = process.cpuUsage(lastCpu);
        lastCpu = process.cpuUsage();
        attribution.tick(performance.now(), (used.user + used.system) / 1000);
        for (const [t, ms] of attribution.drain()) pending.set(t, (pending.get(t) ?? 0) + ms);
        if (++seconds % 60 === 0 && pending.size > 0) {
          const batch = pending;
          pending = new Map();
          void service.addHavreCpu(batch, core.clock.now()).catch((err: unknown) => core.logger.warn({ err }, 'recording attributed CPU failed'));
        }
      }, 1000);
      cpuTimer.unref();
      let running: Promise<unknown> | null = null;
      const tick = () => {
        if (running) return;
        running = service
          .sample(core.clock.now())
          .catch((err: unknown) => core.logger.warn({ err }, 'usage sampling failed'))
          .finally(() => (running = null));
      };
      const timer = setInterval(tick, 5 * 60_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        clearInterval(cpuTimer);
        await running;
        if (pending.size > 0) await service.addHavreCpu(pending, core.clock.now()).catch(() => 0);
      };
    },
  };
}
