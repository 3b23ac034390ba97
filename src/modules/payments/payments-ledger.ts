/**
 * What an invoice owes and whether it is paid (BIL-10), and the one place that lifts a
 * non-payment suspension (BIL-11). Everything takes the caller's transaction, so a payment, the
 * invoice becoming paid and the tenants coming back commit together — or not at all.
 *
 * Owed = the invoice's gross amount minus the gross of the credit notes correcting it; paid = the
 * sum of its succeeded payments. An invoice is paid when paid ≥ owed.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Executor, Trx } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { TenantActor, TenantsService } from '../tenants/index.ts';

export interface LedgerDeps {
  clock: Clock;
  audit: AuditService;
  tenants: Pick<TenantsService, 'transition'>;
}

export interface InvoiceBalance {
  invoiceId: string;
  customerId: string;
  number: string | null;
  dueDate: string | null;
  grossCents: number;
  owedCents: number;
  paidCents: number;
  pendingCents: number;
  buyer: Record<string, unknown>;
}

/** The balance of an issued invoice, or undefined when `invoiceId` is not one. */
export async function invoiceBalance(trx: Executor, invoiceId: string): Promise<InvoiceBalance | undefined> {
  const row = await trx
    .selectFrom('billing_documents as d')
    .select([
      'd.id', 'd.customer_id', 'd.number', 'd.due_date', 'd.gross_cents', 'd.buyer',
      sql<string>`d.gross_cents - coalesce((SELECT sum(c.gross_cents) FROM billing_documents c WHERE c.corrects_id = d.id AND c.state = 'issued'), 0)`.as('owed'),
      sql<string>`coalesce((SELECT sum(p.amount_cents) FROM payments p WHERE p.invoice_id = d.id AND p.state = 'succeeded'), 0)`.as('paid'),
      sql<string>`coalesce((SELECT sum(p.amount_cents) FROM payments p WHERE p.invoice_id = d.id AND p.state = 'pending'), 0)`.as('pending'),
    ])
    .where('d.id', '=', invoiceId)
    .where('d.kind', '=', 'invoice')
    .where('d.state', '=', 'issued')
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    invoiceId: row.id, customerId: row.customer_id, number: row.number, dueDate: row.due_date, buyer: row.buyer,
    grossCents: Number(row.gross_cents), owedCents: Number(row.owed), paidCents: Number(row.paid), pendingCents: Number(row.pending),
  };
}

/** The dunning row of an invoice, created when missing, locked for the rest of `trx`. */
export async function lockDunning(trx: Trx, invoiceId: string, customerId: string, now: Date, options: { skipLocked?: boolean } = {}) {
  await trx.insertInto('invoice_dunning').values({ invoice_id: invoiceId, customer_id: customerId, reminder_step: 0, updated_at: now }).onConflict((oc) => oc.column('invoice_id').doNothing()).execute();
  let q = trx.selectFrom('invoice_dunning').selectAll().where('invoice_id', '=', invoiceId).forUpdate();
  if (options.skipLocked) q = q.skipLocked();
  return q.executeTakeFirst();
}

export function createLedger(deps: LedgerDeps) {
  const { clock, audit, tenants } = deps;

  /**
   * BIL-11: lifts the non-payment suspensions of a customer once none of its invoices is unpaid
   * past the grace period any more: each tenant suspended by dunning goes back to active (or to its
   * trial) at once, recorded as a tenant transition and in the audit log.
   */
  async function liftIfClear(trx: Trx, customerId: string, actor: TenantActor): Promise<string[]> {
    const blocking = await trx.selectFrom('invoice_dunning').select('invoice_id').where('customer_id', '=', customerId).where('paid_at', 'is', null).where('suspended_at', 'is not', null).executeTakeFirst();
    if (blocking) return [];
    const open = await trx
      .selectFrom('dunning_suspensions as s')
      .innerJoin('tenants as t', 't.id', 's.tenant_id')
      .select(['s.id', 's.tenant_id', 't.state', 't.plan', 't.trial_ends_at'])
      .where('s.customer_id', '=', customerId)
      .where('s.lifted_at', 'is', null)
      .forUpdate()
      .execute();
    const now = clock.now();
    const lifted: string[] = [];
    for (const s of open) {
      // A tenant cancelled meanwhile (e.g. terminated by staff) stays where it is.
      if (s.state === 'suspended') {
        const inTrial = s.plan === null && s.trial_ends_at !== null && s.trial_ends_at > now;
        await tenants.transition(s.tenant_id, inTrial ? 'trial' : 'active', { actor, reason: 'unpaid invoices paid', from: ['suspended'] }, trx);
        lifted.push(s.tenant_id);
      }
      await trx.updateTable('dunning_suspensions').set({ lifted_at: now }).where('id', '=', s.id).execute();
    }
    if (open.length > 0) {
      await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'payments.suspension_lifted', subjectType: 'customer', subjectId: customerId, customerId, data: { tenants: lifted } }, trx);
    }
    return lifted;
  }

  return {
    liftIfClear,

    /**
     * Re-reads an invoice's balance after a payment changed: marks it paid (and lifts the
     * suspension when nothing else is overdue), or unpaid again after a chargeback.
     */
    async settle(trx: Trx, invoiceId: string, actor: TenantActor): Promise<{ paid: boolean; lifted: string[] }> {
      const balance = await invoiceBalance(trx, invoiceId);
      if (!balance) return { paid: false, lifted: [] };
      const now = clock.now();
      const dunning = await lockDunning(trx, invoiceId, balance.customerId, now);
      const paid = balance.paidCents >= balance.owedCents;
      if (paid && !dunning?.paid_at) {
        await trx.updateTable('invoice_dunning').set({ paid_at: now, updated_at: now }).where('invoice_id', '=', invoiceId).execute();
        await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'payments.invoice_paid', subjectType: 'invoice', subjectId: invoiceId, customerId: balance.customerId, data: { number: balance.number, paidCents: balance.paidCents, owedCents: balance.owedCents } }, trx);
      } else if (!paid && dunning?.paid_at) {
        await trx.updateTable('invoice_dunning').set({ paid_at: null, updated_at: now }).where('invoice_id', '=', invoiceId).execute();
        await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'payments.invoice_reopened', subjectType: 'invoice', subjectId: invoiceId, customerId: balance.customerId, data: { number: balance.number, paidCents: balance.paidCents, owedCents: balance.owedCents } }, trx);
      }
      const lifted = paid ? await liftIfClear(trx, balance.customerId, actor) : [];
      return { paid, lifted };
    },

    /** Records that dunning suspended `tenantId` for `invoiceId` (so only these are lifted on payment). */
    async noteSuspension(trx: Trx, input: { tenantId: string; customerId: string; invoiceId: string }): Promise<void> {
      await trx
        .insertInto('dunning_suspensions')
        .values({ id: randomUUID(), tenant_id: input.tenantId, customer_id: input.customerId, invoice_id: input.invoiceId, suspended_at: clock.now(), lifted_at: null })
        .onConflict((oc) => oc.column('tenant_id').where('lifted_at', 'is', null).doNothing())
        .execute();
    },
  };
}

export type Ledger = ReturnType<typeof createLedger>;
