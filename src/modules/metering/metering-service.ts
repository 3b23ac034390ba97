/**
 * Metering (MET-1, MET-2, MET-3), as the usage page explains it to customers:
 * - **Database time**: the time PostgreSQL spent executing the tenant's statements
 *   (`pg_stat_database.active_time` of its database), sampled hourly; the delta since the previous
 *   sample is counted, a statistics reset or a server restart (the counter going back) counts from
 *   zero, and the first sample of a database is its baseline (the warm-pool set-up is not billed).
 *   Added to it: the CPU Havre's own process spent on the tenant's requests, attributed by
 *   cpu-attribution.ts (an estimate, said so on the usage page).
 * - **Database size** (`pg_database_size`) and **file storage** (the bytes of its files), sampled
 *   hourly; the day's and the month's peaks are kept.
 * - **Warnings** at 80 % and 100 % of each allowance of the plan, once per allowance per month.
 * Every job takes `now`; days and months are Paris ones.
 */
import { sql } from 'kysely';
import type { Db } from '../../db/db.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { Mailer } from '../mail/mail-service.ts';
import type { FleetModule } from '../fleet/index.ts';
import type { Plan } from '../billing/plans.ts';
import { planByCode } from '../billing/plans.ts';
import { usageWarningMail } from './metering-mails.ts';

const HOUR_MS = 3_600_000;

export interface MonthFigures {
  month: string;
  cpuHours: number;
  peakDatabaseBytes: number;
  peakStorageBytes: number;
}

export interface MeteringDeps {
  db: Db;
  fleet: Pick<FleetModule, 'usage'>;
  files: Storage;
  mailer: Mailer;
  plans: readonly Plan[];
}

/** Bytes stored under a tenant database's area. */
async function storageBytes(files: Storage, tenantDatabaseId: string): Promise<number> {
  let total = 0;
  for await (const o of files.list(`tenants/${tenantDatabaseId}`)) total += o.size;
  return total;
}

export function createMeteringService(deps: MeteringDeps) {
  const { db } = deps;

  /** The month's figures of a tenant (sums and peaks of its days), `month` = YYYY-MM (Paris). */
  async function month(tenantId: string, monthKey: string): Promise<MonthFigures> {
    const row = await db
      .selectFrom('usage_days')
      .select([sql<number>`coalesce(sum(db_time_ms + havre_cpu_ms), 0)`.as('ms'), sql<string>`coalesce(max(peak_database_bytes), 0)::text`.as('db'), sql<string>`coalesce(max(peak_storage_bytes), 0)::text`.as('st')])
      .where('tenant_id', '=', tenantId)
      .where(sql<string>`to_char(day, 'YYYY-MM')`, '=', monthKey)
      .executeTakeFirstOrThrow();
    return { month: monthKey, cpuHours: Number(row.ms) / HOUR_MS, peakDatabaseBytes: Number(row.db), peakStorageBytes: Number(row.st) };
  }

  /**
   * The month's figures of several tenants in ONE query (the billing run asks per page of
   * subscriptions). Tenants without any day in the month are absent from the map. Same sums and
   * peaks as `month`; the day range is sargable on the (tenant_id, day) key.
   */
  async function months(tenantIds: readonly string[], monthKey: string): Promise<Map<string, MonthFigures>> {
    const out = new Map<string, MonthFigures>();
    if (tenantIds.length === 0) return out;
    if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(monthKey)) throw new Error(`not a month: ${monthKey}`);
    const rows = await db
      .selectFrom('usage_days')
      .select(['tenant_id', sql<number>`sum(db_time_ms + havre_cpu_ms)`.as('ms'), sql<string>`max(peak_database_bytes)::text`.as('db'), sql<string>`max(peak_storage_bytes)::text`.as('st')])
      .where('tenant_id', '=', sql<string>`ANY(${[...new Set(tenantIds)]}::uuid[])`)
      .where('day', '>=', sql<string>`${`${monthKey}-01`}::date`)
      .where('day', '<', sql<string>`(${`${monthKey}-01`}::date + interval '1 month')::date`)
      .groupBy('tenant_id')
      .execute();
    for (const r of rows) out.set(r.tenant_id, { month: monthKey, cpuHours: Number(r.ms) / HOUR_MS, peakDatabaseBytes: Number(r.db), peakStorageBytes: Number(r.st) });
    return out;
  }

  /** MET-3: warnings at 80 % and 100 % of each allowance, once per tenant, month, allowance, threshold. */
  async function warn(tenantId: string, plan: Plan, figures: MonthFigures, now: Date): Promise<number> {
    const ratios = { cpu: figures.cpuHours / plan.cpuHours, database: figures.peakDatabaseBytes / plan.databaseBytes, storage: figures.peakStorageBytes / plan.storageBytes } as const;
    let sent = 0;
    for (const allowance of ['cpu', 'database', 'storage'] as const) {
      for (const threshold of [100, 80] as const) {
        if (ratios[allowance] * 100 < threshold) continue;
        await db.transaction().execute(async (trx) => {
          const claimed = await trx.insertInto('usage_alerts').values({ tenant_id: tenantId, month: figures.month, allowance, threshold, sent_at: now }).onConflict((oc) => oc.doNothing()).returning('tenant_id').executeTakeFirst();
          if (!claimed) return;
          const people = await trx
            .selectFrom('tenants as t')
            .innerJoin('memberships as m', 'm.customer_id', 't.customer_id')
            .innerJoin('users as u', 'u.id', 'm.user_id')
            .select(['u.id', 'u.email', 'u.locale', 't.name'])
            .where('t.id', '=', tenantId)
            .where('m.role', 'in', ['owner', 'administrator'])
            .execute();
          for (const p of people) {
            const mail = usageWarningMail(p.locale === 'fr' ? 'fr' : 'en', { tenantName: p.name, allowance, threshold, month: figures.month, planCode: plan.code });
            await deps.mailer.send({ to: p.email, userId: p.id, template: 'metering.usage_warning', locale: p.locale === 'fr' ? 'fr' : 'en', ...mail, dedupeKey: `metering:${tenantId}:${figures.month}:${allowance}:${threshold}:${p.id}` }, trx);
          }
          sent++;
        });
        break; // the 100 % warning says it all; the 80 % one is not sent after it
      }
    }
    return sent;
  }

  return {
    month,
    months,

    /**
     * One hourly sample of every tenant with a live database (MET-1, MET-2): the hour is the key,
     * so several nodes sampling the same hour record it once. Returns how many were recorded.
     */
    async sample(now: Date): Promise<{ sampled: number; warnings: number }> {
      const hour = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS);
      const day = parisDate(now);
      let sampled = 0;
      let warnings = 0;
      const usages = await deps.fleet.usage();
      if (usages.length === 0) return { sampled, warnings };
      // Tenants and their previous samples in two queries for the whole fleet, not two per tenant.
      const tenants = new Map(
        (await db.selectFrom('tenants').select(['id', 'plan', 'tenant_database_id']).where('tenant_database_id', 'in', usages.map((u) => u.tenantDatabaseId)).where('state', '!=', 'destroyed').execute()).map((t) => [t.tenant_database_id!, t]),
      );
      const previous = new Map(
        (await db
          .selectFrom('usage_samples')
          .selectAll()
          .distinctOn('tenant_id')
          .where('tenant_id', 'in', [...tenants.values()].map((t) => t.id).concat('00000000-0000-0000-0000-000000000000'))
          .where('sampled_at', '<', hour)
          .orderBy('tenant_id')
          .orderBy('sampled_at', 'desc')
          .execute()).map((p) => [p.tenant_id, p]),
      );
      for (const u of usages) {
        const tenant = tenants.get(u.tenantDatabaseId);
        if (!tenant) continue;
        const prev = previous.get(tenant.id);
        const sameCounter = prev && prev.tenant_database_id === u.tenantDatabaseId && (prev.db_stats_reset?.getTime() ?? null) === (u.statsReset?.getTime() ?? null) && u.activeTimeMs >= prev.db_active_ms;
        // First sample: the baseline. Same counter: the difference. Reset, restart or another database: all of it is new.
        const delta = !prev ? 0 : sameCounter ? u.activeTimeMs - prev.db_active_ms : u.activeTimeMs;
        const bytes = await storageBytes(deps.files, u.tenantDatabaseId);
        const recorded = await db.transaction().execute(async (trx) => {
          const ins = await trx
            .insertInto('usage_samples')
            .values({ tenant_id: tenant.id, sampled_at: hour, tenant_database_id: u.tenantDatabaseId, database_bytes: String(u.databaseBytes), storage_bytes: String(bytes), db_active_ms: u.activeTimeMs, db_stats_reset: u.statsReset, db_time_ms: delta })
            .onConflict((oc) => oc.doNothing())
            .returning('tenant_id')
            .executeTakeFirst();
          if (!ins) return false;
          await trx
            .insertInto('usage_days')
            .values({ tenant_id: tenant.id, day, db_time_ms: delta, peak_database_bytes: String(u.databaseBytes), peak_storage_bytes: String(bytes), samples: 1 })
            .onConflict((oc) =>
              oc.columns(['tenant_id', 'day']).doUpdateSet({
                db_time_ms: sql`usage_days.db_time_ms + excluded.db_time_ms`,
                peak_database_bytes: sql`greatest(usage_days.peak_database_bytes, excluded.peak_database_bytes)`,
                peak_storage_bytes: sql`greatest(usage_days.peak_storage_bytes, excluded.peak_storage_bytes)`,
                samples: sql`usage_days.samples + 1`,
              }),
            )
            .execute();
          return true;
        });
        if (!recorded) continue;
        sampled++;
        const plan = tenant.plan ? planByCode(deps.plans, tenant.plan) : undefined;
        if (plan) warnings += await warn(tenant.id, plan, await month(tenant.id, day.slice(0, 7)), now);
      }
      return { sampled, warnings };
    },

    /**
     * Adds the CPU this node attributed to tenants (cpu-attribution.ts) to their Paris day, in one
     * statement. Tenants that no longer exist are skipped by the join.
     */
    async addHavreCpu(perTenant: Map<string, number>, now: Date): Promise<number> {
      const rows = [...perTenant].filter(([, ms]) => ms > 0);
      if (rows.length === 0) return 0;
      const day = parisDate(now);
      await sql`INSERT INTO usage_days (tenant_id, day, havre_cpu_ms)
        SELECT t.id, ${day}::date, v.ms FROM unnest(${rows.map((r) => r[0])}::uuid[], ${rows.map((r) => r[1])}::float8[]) AS v(id, ms) JOIN tenants t ON t.id = v.id
        ON CONFLICT (tenant_id, day) DO UPDATE SET havre_cpu_ms = usage_days.havre_cpu_ms + excluded.havre_cpu_ms`.execute(db);
      return rows.length;
    },

    /** The usage page's data: days of the month, the month against the plan, past months. */
    async usage(tenantId: string, plan: Plan | undefined, now: Date) {
      const current = day(now).slice(0, 7);
      const days = await db.selectFrom('usage_days').selectAll().where('tenant_id', '=', tenantId).where(sql<string>`to_char(day, 'YYYY-MM')`, '=', current).orderBy('day').execute();
      const months = await db.selectFrom('usage_days').select(sql<string>`to_char(day, 'YYYY-MM')`.as('m')).where('tenant_id', '=', tenantId).groupBy(sql`to_char(day, 'YYYY-MM')`).orderBy('m', 'desc').limit(13).execute();
      const monthFigures = await month(tenantId, current);
      return {
        plan,
        current: monthFigures,
        days: days.map((d) => ({ day: d.day, cpuHours: (d.db_time_ms + d.havre_cpu_ms) / HOUR_MS, peakDatabaseBytes: Number(d.peak_database_bytes), peakStorageBytes: Number(d.peak_storage_bytes) })),
        past: await Promise.all(months.filter((m) => m.m !== current).map((m) => month(tenantId, m.m))),
      };
    },
  };
}

function day(now: Date): string {
  return parisDate(now);
}

export type MeteringService = ReturnType<typeof createMeteringService>;
