/**
 * Scheduled work of the accounts module, each a function of (deps, now) so tests and simulations
 * choose the time.
 */
import type { AccountsRepo } from './accounts-repo.ts';

/**
 * Failed sign-ins (e-mail and IP: personal data) are needed only for the sliding window of the
 * sign-in limits; they are kept one day for an operator looking into an attack (the audit log
 * keeps the record of each attempt), then deleted.
 */
export const SIGN_IN_FAILURE_RETENTION_MS = 24 * 3_600_000;

export async function purgeSignInFailures(deps: { users: AccountsRepo; windowMinutes: number }, now: Date): Promise<void> {
  const keepMs = Math.max(SIGN_IN_FAILURE_RETENTION_MS, deps.windowMinutes * 60_000);
  await deps.users.purgeFailuresBefore(new Date(now.getTime() - keepMs));
}
