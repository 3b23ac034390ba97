/**
 * BIL-11: past the grace period, the operator may terminate a customer that does not pay — at
 * once, not at the end of the following month: each of its subscriptions ends today (notice
 * recorded with source `staff`) and each tenant is cancelled (cause `staff`), which starts the
 * deletion grace period during which the owner can still export (TEN-4).
 */
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { Subscriptions } from '../billing/subscriptions.ts';
import type { DeletionService } from '../deletion/index.ts';
import type { TenantActor } from '../tenants/index.ts';

export interface TerminationDeps {
  db: Db;
  clock: Clock;
  subscriptions: Pick<Subscriptions, 'terminate'>;
  deletion: Pick<DeletionService, 'cancel'>;
}

/** Terminates the customer of an invoice unpaid past the grace period; returns the cancelled tenants. */
export async function terminateForNonPayment(deps: TerminationDeps, invoiceId: string, input: { actor: TenantActor; reason?: string | null }): Promise<{ tenants: string[] }> {
  const row = isUuid(invoiceId) ? await deps.db.selectFrom('invoice_dunning').selectAll().where('invoice_id', '=', invoiceId).executeTakeFirst() : undefined;
  if (!row) throw notFound('invoice_not_found', 'No unpaid invoice with this id is in dunning.');
  if (row.paid_at) throw conflict('invoice_paid', 'This invoice is paid.');
  if (!row.suspended_at) throw conflict('grace_period_running', 'Termination for non-payment is possible once the grace period is over (tenants suspended).');
  const today = parisDate(deps.clock.now());
  const subs = await deps.db.selectFrom('subscriptions').select('id').where('customer_id', '=', row.customer_id).where((eb) => eb.or([eb('ends_on', 'is', null), eb('ends_on', '>', today)])).execute();
  for (const s of subs) await deps.subscriptions.terminate(s.id, { source: 'staff', lastDay: today, actor: { type: input.actor.type, id: input.actor.id ?? null } });
  const tenants = await deps.db.selectFrom('tenants').select('id').where('customer_id', '=', row.customer_id).where('state', 'in', ['trial', 'active', 'suspended']).execute();
  for (const t of tenants) await deps.deletion.cancel(t.id, { actor: input.actor, cause: 'staff', reason: input.reason ?? 'terminated for non-payment' });
  await deps.db.updateTable('invoice_dunning').set({ terminated_at: deps.clock.now(), updated_at: deps.clock.now() }).where('invoice_id', '=', invoiceId).execute();
  return { tenants: tenants.map((t) => t.id) };
}
