/**
 * TEN-3: the lifecycle of a tenant, as one table of allowed transitions.
 *
 *   provisioning → trial                       database claimed, trial starts (creation)
 *   trial        → active | suspended | cancelled
 *   active       → suspended | cancelled
 *   suspended    → active | trial | cancelled  resumed (back to its trial when the trial had not
 *                                              ended and no plan was chosen: staff may suspend a
 *                                              trial, and resuming it must not start a paid
 *                                              subscription nobody picked)
 *   cancelled    → active | trial              reactivated within the 4-week grace period
 *   cancelled    → destroyed                   database dropped, files deleted, keys shredded
 *   destroyed    (final)
 *
 * Every transition is a compare-and-set in the repository: `UPDATE … WHERE state = ANY(from)`,
 * where `from` is taken from this table; zero rows is an `invalid_transition` error. The grace
 * period and destruction jobs come later; they will use these same transitions.
 */

export const TENANT_STATES = ['provisioning', 'trial', 'active', 'suspended', 'cancelled', 'destroyed'] as const;
export type TenantState = (typeof TENANT_STATES)[number];

/** from → the states it may move to. The one source of truth of the lifecycle. */
export const TENANT_TRANSITIONS: Readonly<Record<TenantState, readonly TenantState[]>> = Object.freeze({
  provisioning: ['trial'],
  trial: ['active', 'suspended', 'cancelled'],
  active: ['suspended', 'cancelled'],
  suspended: ['active', 'trial', 'cancelled'],
  cancelled: ['active', 'trial', 'destroyed'],
  destroyed: [],
});

export function isTenantState(value: string): value is TenantState {
  return (TENANT_STATES as readonly string[]).includes(value);
}

export function canTransition(from: TenantState, to: TenantState): boolean {
  return TENANT_TRANSITIONS[from].includes(to);
}

/** The states from which `to` may be reached, optionally narrowed to `among` (e.g. resume: only from suspended). */
export function allowedFrom(to: TenantState, among: readonly TenantState[] = TENANT_STATES): TenantState[] {
  return TENANT_STATES.filter((from) => among.includes(from) && canTransition(from, to));
}

/** States in which the tenant's database is served to its members. */
export const SERVING_STATES: readonly TenantState[] = ['trial', 'active'];
