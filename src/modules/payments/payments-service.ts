/**
 * Payments (BIL-10): staff record bank transfers; a customer's card (Stripe) or SEPA mandate
 * (GoCardless) is registered by its provider ids and charged for an invoice; the providers'
 * webhooks, verified and deduplicated by event id, move payments to succeeded or failed. Each
 * change re-reads the invoice's balance in the same transaction (payments-ledger.ts), so the
 * invoice becomes paid — and a non-payment suspension is lifted — at once.
 *
 * Provider calls are never made inside a transaction: a charge first commits a pending payment
 * carrying its idempotency key, then calls the provider; a crash or timeout in between leaves that
 * row, and the next charge of the invoice replays the same key (the provider answers with the
 * first call's outcome instead of charging twice).
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, conflict, notFound, unavailable } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { TenantActor } from '../tenants/index.ts';
import type { GoCardlessProvider } from './gocardless-provider.ts';
import { invoiceBalance, lockDunning, type InvoiceBalance, type Ledger } from './payments-ledger.ts';
import type { PaymentsTable } from './payments-tables.ts';
import { InvalidWebhookSignature, type PaymentProvider } from './providers.ts';
import { holdsPaymentData } from './sensitive-data.ts';
import type { StripeProvider } from './stripe-provider.ts';

export type Payment = PaymentsTable;

export interface PaymentsServiceDeps {
  db: Db;
  clock: Clock;
  audit: AuditService;
  ledger: Ledger;
  providers: { stripe?: StripeProvider | undefined; gocardless?: GoCardlessProvider | undefined };
}

export function createPaymentsService(deps: PaymentsServiceDeps) {
  const { db, clock, audit, ledger, providers } = deps;

  function providerOf(name: 'stripe' | 'gocardless'): PaymentProvider {
    const p = providers[name];
    if (!p) throw unavailable('provider_not_configured', `The ${name} provider is not configured on this installation.`);
    return p;
  }

  async function issuedInvoice(invoiceId: string): Promise<InvoiceBalance> {
    const balance = isUuid(invoiceId) ? await invoiceBalance(db, invoiceId) : undefined;
    if (!balance) throw notFound('invoice_not_found');
    return balance;
  }

  async function saveMethod(customerId: string, provider: 'stripe' | 'gocardless', ids: { providerCustomerId: string | null; providerMethodId: string }, actor: TenantActor): Promise<void> {
    const now = clock.now();
    await db.transaction().execute(async (trx) => {
      // One automatic method per customer: the new one replaces the previous (which stays known, revoked).
      await trx.updateTable('payment_methods').set({ state: 'revoked', updated_at: now }).where('customer_id', '=', customerId).where('state', '=', 'active').where('provider_method_id', '<>', ids.providerMethodId).execute();
      await trx
        .insertInto('payment_methods')
        .values({ id: randomUUID(), customer_id: customerId, provider, provider_customer_id: ids.providerCustomerId, provider_method_id: ids.providerMethodId, state: 'active', created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['provider', 'provider_method_id']).doUpdateSet({ state: 'active', updated_at: now }).where('payment_methods.customer_id', '=', customerId))
        .execute();
      await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'payments.method_registered', subjectType: 'customer', subjectId: customerId, customerId, data: { provider, ...ids } }, trx);
    });
  }

  return {
    /** Staff record a bank transfer received for an invoice (the embedded default provider). */
    async recordBankTransfer(invoiceId: string, input: { amountCents: number; receivedOn: string; reference: string; actor: TenantActor }): Promise<{ payment: Payment; paid: boolean }> {
      const invoice = await issuedInvoice(invoiceId);
      if (holdsPaymentData(input.reference)) throw badRequest('reference_holds_payment_data', 'The reference looks like it contains a card number or an IBAN; Havre does not store those. Keep only the transfer reference.');
      if (input.receivedOn > parisDate(clock.now())) throw badRequest('received_in_future', 'A transfer cannot be received in the future.');
      const now = clock.now();
      return db.transaction().execute(async (trx) => {
        await lockDunning(trx, invoiceId, invoice.customerId, now);
        const payment = await trx
          .insertInto('payments')
          .values({
            id: randomUUID(), invoice_id: invoiceId, customer_id: invoice.customerId, provider: 'bank_transfer', provider_payment_id: null, method_id: null, idempotency_key: `transfer:${randomUUID()}`, attempt: 1,
            amount_cents: String(input.amountCents), state: 'succeeded', reference: input.reference.trim(), received_at: new Date(`${input.receivedOn}T12:00:00Z`), recorded_by: input.actor.id ?? null, created_at: now, updated_at: now,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, action: 'payments.bank_transfer_recorded', subjectType: 'invoice', subjectId: invoiceId, customerId: invoice.customerId, data: { paymentId: payment.id, amountCents: input.amountCents, receivedOn: input.receivedOn } }, trx);
        const { paid } = await ledger.settle(trx, invoiceId, input.actor);
        return { payment, paid };
      });
    },

    /** A card entered in Stripe's form, known here by its PaymentMethod id, becomes the customer's method. */
    async registerStripeCard(customerId: string, paymentMethodId: string, actor: TenantActor): Promise<void> {
      if (!/^pm_[A-Za-z0-9_]{1,90}$/.test(paymentMethodId)) throw badRequest('invalid_payment_method_id', 'A Stripe PaymentMethod id starts with pm_.');
      const stripe = providers.stripe;
      if (!stripe) throw unavailable('provider_not_configured', 'Stripe is not configured on this installation.');
      const known = await db.selectFrom('payment_methods').select('provider_customer_id').where('customer_id', '=', customerId).where('provider', '=', 'stripe').where('provider_customer_id', 'is not', null).executeTakeFirst();
      const { providerCustomerId } = await stripe.registerCard({ havreCustomerId: customerId, providerCustomerId: known?.provider_customer_id ?? null, paymentMethodId });
      await saveMethod(customerId, 'stripe', { providerCustomerId, providerMethodId: paymentMethodId }, actor);
    },

    /** A SEPA mandate signed on GoCardless' pages becomes the customer's method. */
    async registerMandate(customerId: string, mandateId: string, actor: TenantActor): Promise<void> {
      if (!/^MD[A-Za-z0-9]{1,90}$/.test(mandateId)) throw badRequest('invalid_mandate_id', 'A GoCardless mandate id starts with MD.');
      const gocardless = providers.gocardless;
      if (!gocardless) throw unavailable('provider_not_configured', 'GoCardless is not configured on this installation.');
      const { providerCustomerId } = await gocardless.registerMandate(mandateId);
      await saveMethod(customerId, 'gocardless', { providerCustomerId, providerMethodId: mandateId }, actor);
    },

    /**
     * Charges what is left to pay on an invoice through the customer's active method, with the key
     * `invoice:<id>:attempt:<n>`. An attempt left without an answer is replayed with its own key.
     */
    async chargeInvoice(invoiceId: string, actor: TenantActor): Promise<Payment> {
      const invoice = await issuedInvoice(invoiceId);
      const now = clock.now();
      const prepared = await db.transaction().execute(async (trx) => {
        await lockDunning(trx, invoiceId, invoice.customerId, now);
        const unanswered = await trx.selectFrom('payments').selectAll().where('invoice_id', '=', invoiceId).where('state', '=', 'pending').where('provider_payment_id', 'is', null).executeTakeFirst();
        const method = await trx.selectFrom('payment_methods').selectAll().where('customer_id', '=', invoice.customerId).where('state', '=', 'active').orderBy('created_at', 'desc').executeTakeFirst();
        if (unanswered) return { payment: unanswered, method: await trx.selectFrom('payment_methods').selectAll().where('id', '=', unanswered.method_id!).executeTakeFirstOrThrow() };
        if (!method) throw conflict('no_payment_method', 'This customer has no card or SEPA mandate registered.');
        const balance = (await invoiceBalance(trx, invoiceId))!;
        const left = balance.owedCents - balance.paidCents - balance.pendingCents;
        if (left <= 0) throw conflict('nothing_to_charge', 'This invoice is paid, or its remaining amount is already being collected.');
        const attempts = await trx.selectFrom('payments').select(sql<string>`count(*)`.as('n')).where('invoice_id', '=', invoiceId).where('provider', '=', method.provider).executeTakeFirstOrThrow();
        const attempt = Number(attempts.n) + 1;
        const payment = await trx
          .insertInto('payments')
          .values({ id: randomUUID(), invoice_id: invoiceId, customer_id: invoice.customerId, provider: method.provider, provider_payment_id: null, method_id: method.id, idempotency_key: `invoice:${invoiceId}:attempt:${attempt}`, attempt, amount_cents: String(left), state: 'pending', reference: null, received_at: null, recorded_by: null, created_at: now, updated_at: now })
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'payments.charge_started', subjectType: 'invoice', subjectId: invoiceId, customerId: invoice.customerId, data: { paymentId: payment.id, provider: method.provider, attempt, amountCents: left } }, trx);
        return { payment, method };
      });
      const { payment, method } = prepared;
      const result = await providerOf(method.provider).charge({ invoiceId, amountCents: Number(payment.amount_cents), providerCustomerId: method.provider_customer_id, providerMethodId: method.provider_method_id, idempotencyKey: payment.idempotency_key });
      return db.transaction().execute(async (trx) => {
        const updated = await trx
          .updateTable('payments')
          .set({ provider_payment_id: result.providerPaymentId, state: result.state, received_at: result.state === 'succeeded' ? clock.now() : null, updated_at: clock.now() })
          .where('id', '=', payment.id)
          .where('state', '=', 'pending')
          .returningAll()
          .executeTakeFirst();
        if (updated?.state === 'succeeded') await ledger.settle(trx, invoiceId, actor);
        return updated ?? (await trx.selectFrom('payments').selectAll().where('id', '=', payment.id).executeTakeFirstOrThrow());
      });
    },

    /**
     * A provider's webhook: verified (400 `invalid_signature` otherwise, nothing changed), then each
     * event applied once — its id is recorded in the same transaction as its effect, so a replay
     * finds it and changes nothing.
     */
    async handleWebhook(name: 'stripe' | 'gocardless', rawBody: Buffer, headers: Record<string, string | string[] | undefined>): Promise<{ applied: number; duplicates: number; ignored: number }> {
      const provider = providerOf(name);
      let events;
      try {
        events = provider.parseWebhook(rawBody, headers);
      } catch (err) {
        if (err instanceof InvalidWebhookSignature) throw badRequest('invalid_signature', 'The webhook signature does not verify.');
        if (err instanceof SyntaxError) throw badRequest('invalid_body', 'The webhook body is not valid JSON.');
        throw err;
      }
      const outcome = { applied: 0, duplicates: 0, ignored: 0 };
      const actor: TenantActor = { type: 'system', id: null };
      for (const event of events) {
        await db.transaction().execute(async (trx) => {
          const now = clock.now();
          const fresh = await trx.insertInto('payment_events').values({ provider: name, event_id: event.id, type: event.type.slice(0, 100), object_id: event.objectId, outcome: 'ignored', received_at: now }).onConflict((oc) => oc.columns(['provider', 'event_id']).doNothing()).returning('event_id').executeTakeFirst();
          if (!fresh) {
            outcome.duplicates++;
            return;
          }
          let applied = false;
          const a = event.action;
          if (a.kind === 'payment_succeeded' || a.kind === 'payment_failed') {
            const row = await trx.selectFrom('payments').select(['id', 'invoice_id', 'state']).where('provider', '=', name).where('provider_payment_id', '=', a.providerPaymentId).forUpdate().executeTakeFirst();
            const to = a.kind === 'payment_succeeded' ? 'succeeded' : 'failed';
            if (row && row.state !== to) {
              await trx.updateTable('payments').set({ state: to, received_at: to === 'succeeded' ? now : null, updated_at: now }).where('id', '=', row.id).execute();
              await audit.record({ actorType: 'system', action: `payments.payment_${to}`, subjectType: 'invoice', subjectId: row.invoice_id, data: { paymentId: row.id, provider: name, eventId: event.id } }, trx);
              await ledger.settle(trx, row.invoice_id, actor);
              applied = true;
            }
          } else if (a.kind === 'method_revoked') {
            const res = await trx.updateTable('payment_methods').set({ state: 'revoked', updated_at: now }).where('provider', '=', name).where('provider_method_id', '=', a.providerMethodId).where('state', '=', 'active').executeTakeFirst();
            applied = Number(res.numUpdatedRows) > 0;
          }
          if (applied) await trx.updateTable('payment_events').set({ outcome: 'applied' }).where('provider', '=', name).where('event_id', '=', event.id).execute();
          if (applied) outcome.applied++;
          else outcome.ignored++;
        });
      }
      return outcome;
    },

    /** The payments of an invoice and its balance (who may see it is checked by the route). */
    async ofInvoice(invoiceId: string): Promise<{ balance: InvoiceBalance; paid: boolean; payments: Payment[] }> {
      const balance = await issuedInvoice(invoiceId);
      const payments = await db.selectFrom('payments').selectAll().where('invoice_id', '=', invoiceId).orderBy('created_at').execute();
      return { balance, paid: balance.paidCents >= balance.owedCents, payments };
    },
  };
}

export type PaymentsService = ReturnType<typeof createPaymentsService>;
