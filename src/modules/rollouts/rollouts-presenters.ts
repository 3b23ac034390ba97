/**
 * What the API and the CLI show of rollouts, releases and deferrals: explicit whitelists of
 * fields with their zod schemas (OpenAPI and the response serialiser use them), and the CLI's
 * text forms. Worker ids and leases stay inside.
 */
import { z } from 'zod';
import type { DeferralRow, ItemCounts, ItemWithTenant, RolloutRow } from './rollouts-repo.ts';
import { REPORT_STATUSES, type ReleaseReport } from './rollouts-security.ts';
import type { RolloutProgress, RunOutcome } from './rollouts-service.ts';

const isoDate = z.string().describe('ISO 8601 date-time (UTC)');

export const countsView = z.object({
  total: z.number().int(),
  done: z.number().int(),
  failed: z.number().int(),
  pending: z.number().int().describe('Not finished yet: waiting for its turn, a retry or its notice period, or running'),
  running: z.number().int(),
  deferred: z.number().int().describe('Skipped by a security rollout: the customer asked in writing to defer it (SEC-5)'),
  skipped: z.number().int().describe('Database dropped meanwhile'),
  waiting: z.number().int().describe('Pending until the end of the maintenance notice period'),
});

export const rolloutView = z.object({
  id: z.uuid(),
  targetVersion: z.number().int(),
  state: z.enum(['running', 'succeeded', 'failed']),
  security: z.boolean(),
  batchSize: z.number().int(),
  concurrency: z.number().int(),
  maxAttempts: z.number().int(),
  noticesSent: z.number().int().describe('Maintenance notices e-mailed when the rollout was created'),
  noticeUntil: isoDate.nullable().describe('Tenants that got a notice are not updated before this instant'),
  createdAt: isoDate,
  finishedAt: isoDate.nullable(),
  counts: countsView,
});
export type RolloutView = z.infer<typeof rolloutView>;

export const itemView = z.object({
  tenantDatabaseId: z.uuid(),
  tenantId: z.uuid().nullable().describe('null for a warm-pool database'),
  tenantName: z.string().nullable(),
  state: z.enum(['pending', 'running', 'done', 'failed', 'deferred', 'skipped']),
  fromVersion: z.number().int(),
  attempts: z.number().int(),
  error: z.string().nullable(),
  finishedAt: isoDate.nullable(),
});

export const rolloutDetailsView = rolloutView.extend({ failures: z.array(itemView), deferred: z.array(itemView) });
export type RolloutDetailsView = z.infer<typeof rolloutDetailsView>;

export const deferralView = z.object({
  id: z.uuid(),
  tenantId: z.uuid(),
  version: z.number().int(),
  reference: z.string(),
  until: z.string().nullable().describe('Last Paris day of the deferral (YYYY-MM-DD); null: until further notice'),
  recordedBy: z.object({ type: z.string(), id: z.string().nullable() }),
  recordedAt: isoDate,
});
export type DeferralView = z.infer<typeof deferralView>;

export const reportView = z.object({
  version: z.number().int(),
  security: z.boolean(),
  releasedAt: isoDate,
  deadlineDate: z.string().describe('Paris date: 5 business days (Mon–Fri, French public holidays excluded) after the release day'),
  deadline: isoDate.describe('The instant that Paris day ends'),
  asOf: isoDate,
  summary: z.record(z.enum(REPORT_STATUSES), z.number().int()),
  tenants: z.array(
    z.object({
      tenantId: z.uuid(),
      tenantName: z.string(),
      customerId: z.uuid(),
      tenantState: z.string(),
      schemaVersion: z.number().int(),
      status: z.enum(REPORT_STATUSES),
      updatedAt: isoDate.nullable(),
      deadline: isoDate.nullable().describe("This tenant's deadline: later after a written deferral, null while one runs until further notice"),
      deferral: z.object({ reference: z.string(), until: z.string().nullable(), recordedAt: isoDate }).nullable(),
      error: z.string().nullable(),
    }),
  ),
});
export type ReportView = z.infer<typeof reportView>;

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function presentRollout(r: RolloutRow, counts: ItemCounts): RolloutView {
  return {
    id: r.id,
    targetVersion: r.target_version,
    state: r.state,
    security: r.security,
    batchSize: r.batch_size,
    concurrency: r.concurrency,
    maxAttempts: r.max_attempts,
    noticesSent: r.notices_sent,
    noticeUntil: iso(r.notice_until),
    createdAt: r.created_at.toISOString(),
    finishedAt: iso(r.finished_at),
    counts,
  };
}

export function presentItem(i: ItemWithTenant): z.infer<typeof itemView> {
  return { tenantDatabaseId: i.tenant_database_id, tenantId: i.tenant_id, tenantName: i.tenant_name, state: i.state, fromVersion: i.from_version, attempts: i.attempts, error: i.last_error, finishedAt: iso(i.finished_at) };
}

export function presentDetails(p: { rollout: RolloutRow; counts: ItemCounts; failures: ItemWithTenant[]; deferred: ItemWithTenant[] }): RolloutDetailsView {
  return { ...presentRollout(p.rollout, p.counts), failures: p.failures.map(presentItem), deferred: p.deferred.map(presentItem) };
}

export function presentDeferral(d: DeferralRow): DeferralView {
  return { id: d.id, tenantId: d.tenant_id, version: d.release_version, reference: d.reference, until: d.until, recordedBy: { type: d.recorded_by_type, id: d.recorded_by_id }, recordedAt: d.recorded_at.toISOString() };
}

export function presentReport(r: ReleaseReport): ReportView {
  return {
    version: r.version,
    security: r.security,
    releasedAt: r.releasedAt.toISOString(),
    deadlineDate: r.deadlineDate,
    deadline: r.deadline.toISOString(),
    asOf: r.asOf.toISOString(),
    summary: r.summary,
    tenants: r.tenants.map((t) => ({
      ...t,
      updatedAt: iso(t.updatedAt),
      deadline: iso(t.deadline),
      deferral: t.deferral ? { reference: t.deferral.reference, until: t.deferral.until, recordedAt: t.deferral.recordedAt.toISOString() } : null,
    })),
  };
}

// ---- CLI text ----

export function countsLine(c: ItemCounts): string {
  const extra = [c.deferred && `${c.deferred} deferred`, c.skipped && `${c.skipped} skipped`, c.waiting && `${c.waiting} waiting for their notice period`].filter(Boolean);
  return `${c.done}/${c.total} done, ${c.failed} failed, ${c.pending + c.running} pending${extra.length ? `, ${extra.join(', ')}` : ''}`;
}

export function progressLine(p: RolloutProgress): string {
  return `batch ${p.batch}: ${countsLine(p.counts)}`;
}

function itemLabel(i: { tenantName: string | null; tenantId: string | null; tenantDatabaseId: string }): string {
  return i.tenantId ? `tenant ${i.tenantName ?? ''} (${i.tenantId})` : `warm-pool database ${i.tenantDatabaseId}`;
}

/** What `havre rollout` says at the end of a run. */
export function outcomeText(o: RunOutcome): string {
  const v = o.rollout.target_version;
  const lines = [`rollout ${o.rollout.id} to version ${v}: ${countsLine(o.counts)}`];
  if (o.status === 'waiting') {
    lines.push(
      `${o.counts.waiting} tenant(s) got a maintenance notice and will not be updated before ${o.waitingUntil?.toISOString()}.`,
      'A running Havre (`havre start`) resumes the rollout then by itself; or run `havre rollout` again after that time.',
    );
  } else if (o.status === 'stopped') {
    lines.push('stopped before the end: run `havre rollout` again to continue.');
  } else {
    lines.push(o.rollout.state === 'succeeded' ? `finished: every tenant database is at version ${v}${o.counts.deferred || o.counts.skipped ? ' (except the deferred and skipped ones)' : ''}.` : `finished with ${o.counts.failed} failed tenant(s); they stay intact on their old version:`);
  }
  for (const f of o.failures.map(presentItem)) lines.push(`  FAILED ${itemLabel(f)} after ${f.attempts} attempt(s): ${f.error ?? 'unknown error'}`);
  return lines.join('\n');
}

export function rolloutTable(list: RolloutView[]): string {
  if (list.length === 0) return 'no rollout yet';
  const header = ['ID', 'VERSION', 'STATE', 'SECURITY', 'CREATED', 'PROGRESS'];
  const rows = list.map((r) => [r.id, String(r.targetVersion), r.state, r.security ? 'yes' : 'no', r.createdAt, countsLine(r.counts)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export function reportText(r: ReportView): string {
  const lines = [
    `version ${r.version}${r.security ? ' (security fix)' : ''}: released ${r.releasedAt}, deadline ${r.deadlineDate} (Paris, 5 business days), as of ${r.asOf}`,
    `  ${REPORT_STATUSES.map((s) => `${s} ${r.summary[s]}`).join(', ')}`,
  ];
  for (const t of r.tenants) {
    const detail = t.status === 'deferred' ? `written request: ${t.deferral?.reference}${t.deferral?.until ? ` (until ${t.deferral.until})` : ''}` : t.status === 'failed' ? `error: ${t.error ?? '-'}` : `updated ${t.updatedAt ?? '-'}`;
    lines.push(`  ${t.status.padEnd(8)}  ${t.tenantId}  ${t.tenantName}  v${t.schemaVersion}  ${detail}`);
  }
  return lines.join('\n');
}
