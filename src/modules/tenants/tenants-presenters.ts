/**
 * What the API and the CLI show of tenants: explicit whitelists of fields, with their zod schemas
 * (the OpenAPI document and the response serialiser use them). A row never leaves as is, so the
 * idempotency key or a future column cannot leak by accident.
 */
import { z } from 'zod';
import { TENANT_STATES } from './tenant-states.ts';
import type { TenantWithServer, TransitionRow } from './tenants-repo.ts';

const state = z.enum(TENANT_STATES);
const isoDate = z.string().describe('ISO 8601 date-time (UTC)');

export const tenantView = z.object({
  id: z.uuid(),
  customerId: z.uuid(),
  name: z.string(),
  region: z.string().describe('Region of the database server holding the tenant (TEN-2)'),
  server: z.string().nullable().describe('Name of that database server (null while provisioning)'),
  state,
  createdAt: isoDate,
  stateChangedAt: isoDate,
  plan: z.string().nullable(),
  trialEndsAt: isoDate.nullable(),
});
export type TenantView = z.infer<typeof tenantView>;

export const adminTenantView = tenantView.extend({
  tenantDatabaseId: z.uuid().nullable(),
  updatedAt: isoDate,
});
export type AdminTenantView = z.infer<typeof adminTenantView>;

export const transitionView = z.object({
  from: state.nullable().describe('null for the creation of the tenant'),
  to: state,
  reason: z.string().nullable(),
  actorType: z.enum(['user', 'staff', 'system', 'cli']),
  at: isoDate,
});
export type TransitionView = z.infer<typeof transitionView>;

export const adminTransitionView = transitionView.extend({ actorId: z.string().nullable() });
export type AdminTransitionView = z.infer<typeof adminTransitionView>;

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function presentTenant(t: TenantWithServer): TenantView {
  return {
    id: t.id,
    customerId: t.customer_id,
    name: t.name,
    region: t.region,
    server: t.server_name,
    state: t.state,
    createdAt: t.created_at.toISOString(),
    stateChangedAt: t.state_changed_at.toISOString(),
    plan: t.plan,
    trialEndsAt: iso(t.trial_ends_at),
  };
}

export function presentAdminTenant(t: TenantWithServer): AdminTenantView {
  return { ...presentTenant(t), tenantDatabaseId: t.tenant_database_id, updatedAt: t.updated_at.toISOString() };
}

/** For customers: who acted is shown by kind only (a staff member's id is not theirs to see). */
export function presentTransition(t: TransitionRow): TransitionView {
  return { from: t.from_state, to: t.to_state, reason: t.reason, actorType: t.actor_type, at: t.at.toISOString() };
}

export function presentAdminTransition(t: TransitionRow): AdminTransitionView {
  return { ...presentTransition(t), actorId: t.actor_id };
}

/** One line per tenant, for the CLI. */
export function tenantTable(tenants: TenantView[]): string {
  if (tenants.length === 0) return 'no tenant';
  const header = ['ID', 'NAME', 'CUSTOMER', 'REGION', 'SERVER', 'STATE', 'CREATED'];
  const rows = tenants.map((t) => [t.id, t.name, t.customerId, t.region, t.server ?? '-', t.state, t.createdAt.slice(0, 10)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** The details of one tenant and its history, for the CLI. */
export function tenantDetails(t: AdminTenantView, transitions: AdminTransitionView[]): string {
  const lines = [
    `${t.name} (${t.id})`,
    `  customer    ${t.customerId}`,
    `  state       ${t.state} since ${t.stateChangedAt}`,
    `  region      ${t.region}, server ${t.server ?? '-'}`,
    `  plan        ${t.plan ?? '-'}${t.trialEndsAt ? `, trial ends ${t.trialEndsAt}` : ''}`,
    `  created     ${t.createdAt}`,
    '  history:',
    ...transitions.map((h) => `    ${h.at}  ${h.from ?? '(new)'} → ${h.to}  by ${h.actorType}${h.actorId ? ` ${h.actorId}` : ''}${h.reason ? `: ${h.reason}` : ''}`),
  ];
  return lines.join('\n');
}
