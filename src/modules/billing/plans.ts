/**
 * The plans of the terms of sale (BIL-1) and the overuse rule (BIL-6), as pure functions over the
 * plan table from configuration (`billing.plans`): the published price list and the code read
 * the same values (OPS-3). Money is integer cents, excluding VAT; sizes are bytes (1 GB = 10⁹ bytes,
 * as in the terms); CPU is hours.
 */

export type SupportLevel = 'none' | 'standard' | 'premium';

export interface Plan {
  code: string;
  /** Monthly price, excluding VAT, in cents. */
  priceCents: number;
  cpuHours: number;
  databaseBytes: number;
  storageBytes: number;
  support: SupportLevel;
  /** Premium plans: first response to a blocking issue within this many business hours (SUP-3). */
  blockingResponseHours: number | null;
}

const GB = 1_000_000_000;

/** The defaults of PROMISES.md BIL-1 (the operator may change them in havre.json). */
export const DEFAULT_PLANS: readonly Plan[] = [
  { code: 'p19', priceCents: 1900, cpuHours: 0.5, databaseBytes: 0.5 * GB, storageBytes: 1 * GB, support: 'none', blockingResponseHours: null },
  { code: 'p49', priceCents: 4900, cpuHours: 1, databaseBytes: 1 * GB, storageBytes: 2 * GB, support: 'none', blockingResponseHours: null },
  { code: 'p99', priceCents: 9900, cpuHours: 1.5, databaseBytes: 1 * GB, storageBytes: 10 * GB, support: 'standard', blockingResponseHours: null },
  { code: 'p199', priceCents: 19900, cpuHours: 2, databaseBytes: 1 * GB, storageBytes: 20 * GB, support: 'standard', blockingResponseHours: null },
  { code: 'p499', priceCents: 49900, cpuHours: 4, databaseBytes: 1 * GB, storageBytes: 40 * GB, support: 'premium', blockingResponseHours: 8 },
  { code: 'p999', priceCents: 99900, cpuHours: 6, databaseBytes: 1 * GB, storageBytes: 100 * GB, support: 'premium', blockingResponseHours: 4 },
];

/** A month's measured usage of one tenant (MET-1, MET-2). */
export interface MonthUsage {
  cpuHours: number;
  peakDatabaseBytes: number;
  peakStorageBytes: number;
}

/** True when `plan` allows all of `usage`. */
export function covers(plan: Plan, usage: MonthUsage): boolean {
  return usage.cpuHours <= plan.cpuHours && usage.peakDatabaseBytes <= plan.databaseBytes && usage.peakStorageBytes <= plan.storageBytes;
}

/** The cheapest plan that allows all of `usage` (ties: the first listed), or null when none does. */
export function smallestCoveringPlan(plans: readonly Plan[], usage: MonthUsage): Plan | null {
  const fitting = plans.filter((p) => covers(p, usage));
  if (fitting.length === 0) return null;
  return fitting.reduce((best, p) => (p.priceCents < best.priceCents ? p : best));
}

export type OveruseOutcome =
  | { kind: 'within_plan' }
  /** BIL-6: the month is charged the difference, and the subscription moves to `upgradeTo` from next month. */
  | { kind: 'upgrade'; upgradeTo: Plan; chargeCents: number }
  /** Nothing covers the usage: charged up to the largest plan, moved there, and the operator must talk to the customer. */
  | { kind: 'beyond_largest'; upgradeTo: Plan; chargeCents: number };

/**
 * BIL-6 at month close: if CPU hours, peak database size or peak storage exceeded the plan, the
 * difference between the price of the smallest plan covering the usage and the current plan is
 * charged for that month, and the subscription moves to that plan from the next month.
 */
export function overuse(plans: readonly Plan[], current: Plan, usage: MonthUsage): OveruseOutcome {
  if (covers(current, usage)) return { kind: 'within_plan' };
  const target = smallestCoveringPlan(plans, usage);
  if (target) return { kind: 'upgrade', upgradeTo: target, chargeCents: Math.max(0, target.priceCents - current.priceCents) };
  const largest = plans.reduce((a, p) => (p.priceCents > a.priceCents ? p : a));
  return { kind: 'beyond_largest', upgradeTo: largest, chargeCents: Math.max(0, largest.priceCents - current.priceCents) };
}

/** Finds a plan by code; undefined when the table has no such plan. */
export function planByCode(plans: readonly Plan[], code: string): Plan | undefined {
  return plans.find((p) => p.code === code);
}
