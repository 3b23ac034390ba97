/**
 * SEC-5: a security fix reaches every tenant within 5 Paris business days of its release, unless
 * the customer asked otherwise in writing.
 *
 * - A *deferral* records such a written request (by staff: who, when, the reference of the
 *   request, optionally the last day it holds) per tenant and release version. While it is in
 *   force, security rollouts skip the tenant (item `deferred`); the tenant's deadline becomes 5
 *   business days after its last day (or the release's deadline, whichever is later; none while
 *   it runs until further notice).
 * - The *release report* tells, per tenant, when it was updated and whether that was on time.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/db.ts';
import { addBusinessDays, endOfParisDay } from '../../lib/business-days.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { DeferralRow, ReleaseRow, RolloutsRepo } from './rollouts-repo.ts';
import type { RolloutActor } from './rollouts-service.ts';

/** Business days between a security release and the deadline of its rollout (SEC-5). */
export const SECURITY_DEADLINE_BUSINESS_DAYS = 5;

export const REPORT_STATUSES = ['on_time', 'late', 'overdue', 'pending', 'deferred', 'failed'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

export interface ReportLine {
  tenantId: string;
  tenantName: string;
  customerId: string;
  tenantState: string;
  schemaVersion: number;
  status: ReportStatus;
  /** When a rollout brought the tenant to the version (null: not yet, or no rollout record). */
  updatedAt: Date | null;
  /** This tenant's deadline: the release's, or later after a written deferral (null while one runs until further notice). */
  deadline: Date | null;
  deferral: { reference: string; until: string | null; recordedAt: Date } | null;
  /** The last error of a failed update (no secrets). */
  error: string | null;
}

export interface ReleaseReport {
  version: number;
  security: boolean;
  releasedAt: Date;
  /** Paris date of the deadline, and the instant it ends. */
  deadlineDate: string;
  deadline: Date;
  asOf: Date;
  summary: Record<ReportStatus, number>;
  tenants: ReportLine[];
}

export interface DeferralInput {
  tenantId: string;
  version: number;
  reference: string;
  /** Last Paris day (`YYYY-MM-DD`) the request covers; absent: until further notice. */
  until?: string | null;
  actor: RolloutActor;
}

/** True while a deferral holds on Paris day `today` (its last day included). */
export function deferralInForce(deferral: Pick<DeferralRow, 'until'>, today: string): boolean {
  return deferral.until === null || today <= deferral.until;
}

/** The end of the SEC-5 period of a release: 5 Paris business days after its release day. */
export function releaseDeadline(release: Pick<ReleaseRow, 'released_at'>): { date: string; end: Date } {
  const date = addBusinessDays(parisDate(release.released_at), SECURITY_DEADLINE_BUSINESS_DAYS);
  return { date, end: endOfParisDay(date) };
}

/**
 * A tenant's own deadline: the release's, unless the customer asked in writing to defer — then
 * 5 business days after the last day of the request (never before the release's), or none while
 * the request runs until further notice.
 */
function deadlineWith(releaseEnd: Date, deferral: Pick<DeferralRow, 'until'> | null): Date | null {
  if (!deferral) return releaseEnd;
  if (deferral.until === null) return null;
  const own = endOfParisDay(addBusinessDays(deferral.until, SECURITY_DEADLINE_BUSINESS_DAYS));
  return own > releaseEnd ? own : releaseEnd;
}

export function createSecurityService(deps: { db: Db; repo: RolloutsRepo; clock: Clock; audit: AuditService }) {
  const { db, repo, clock, audit } = deps;

  /** Records (or replaces) a customer's written request to defer `version` for one tenant; audited. */
  async function recordDeferral(input: DeferralInput): Promise<DeferralRow> {
    if (!Number.isInteger(input.version) || input.version < 1) throw badRequest('invalid_version', 'A release version is a whole number ≥ 1.');
    const reference = input.reference.trim();
    if (reference.length < 1 || reference.length > 500) throw badRequest('invalid_reference', 'Give the reference or a summary of the written request (1 to 500 characters).');
    const now = clock.now();
    const until = input.until ?? null;
    if (until !== null) {
      if (!/^\d{4}-\d{2}-\d{2}$/.test(until) || Number.isNaN(Date.parse(`${until}T00:00:00Z`))) throw badRequest('invalid_until', '`until` is a date, YYYY-MM-DD.');
      if (until < parisDate(now)) throw badRequest('until_in_past', '`until` is already over.');
    }
    return db.transaction().execute(async (trx) => {
      const tenant = isUuid(input.tenantId) ? await repo.findTenant(input.tenantId, trx) : undefined;
      if (!tenant || tenant.state === 'destroyed') throw notFound('tenant_not_found', 'No such tenant.');
      const row = await repo.upsertDeferral(
        { id: randomUUID(), tenant_id: tenant.id, release_version: input.version, reference, until, recorded_by_type: input.actor.type, recorded_by_id: input.actor.id ?? null, recorded_at: now },
        trx,
      );
      await audit.record(
        {
          actorType: input.actor.type,
          actorId: input.actor.id ?? null,
          ip: input.actor.ip ?? null,
          action: 'security.deferral_recorded',
          subjectType: 'tenant',
          subjectId: tenant.id,
          customerId: tenant.customer_id,
          data: { releaseVersion: input.version, reference, until },
        },
        trx,
      );
      return row;
    });
  }

  /** Per tenant: updated when, deadline, and on_time / late / overdue / pending / deferred / failed. */
  async function report(version: number): Promise<ReleaseReport> {
    const release = await repo.findRelease(version);
    if (!release) throw notFound('release_not_found', `Version ${version} has not been rolled out yet.`);
    const asOf = clock.now();
    const today = parisDate(asOf);
    const deadline = releaseDeadline(release);
    const deferrals = new Map((await repo.deferrals(version, null)).map((d) => [d.tenant_id, d]));
    const summary = Object.fromEntries(REPORT_STATUSES.map((s) => [s, 0])) as Record<ReportStatus, number>;
    const tenants = (await repo.reportRows(version)).map((row): ReportLine => {
      const deferral = deferrals.get(row.tenant_id) ?? null;
      const tenantDeadline = deadlineWith(deadline.end, deferral);
      let status: ReportStatus;
      if (row.schema_version >= version) status = row.upgraded_at && tenantDeadline && row.upgraded_at >= tenantDeadline ? 'late' : 'on_time';
      else if (deferral && deferralInForce(deferral, today)) status = 'deferred';
      else if (row.last_item_state === 'failed') status = 'failed';
      else status = tenantDeadline && asOf >= tenantDeadline ? 'overdue' : 'pending';
      summary[status]++;
      return {
        tenantId: row.tenant_id,
        tenantName: row.tenant_name,
        customerId: row.customer_id,
        tenantState: row.tenant_state,
        schemaVersion: row.schema_version,
        status,
        updatedAt: row.schema_version >= version ? row.upgraded_at : null,
        deadline: tenantDeadline,
        deferral: deferral ? { reference: deferral.reference, until: deferral.until, recordedAt: deferral.recorded_at } : null,
        error: status === 'failed' ? row.last_item_error : null,
      };
    });
    return { version, security: release.security, releasedAt: release.released_at, deadlineDate: deadline.date, deadline: deadline.end, asOf, summary, tenants };
  }

  return { recordDeferral, report };
}

export type SecurityService = ReturnType<typeof createSecurityService>;
