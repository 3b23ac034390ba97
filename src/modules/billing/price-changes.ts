/**
 * Price changes (BIL-7). Staff schedule a new monthly price for a plan, effective from the 1st of a
 * month at least 60 days after the announcement (refused otherwise). In the same transaction every
 * affected customer (a subscription on that plan still running at the effective date) is notified
 * by e-mail (outbox, deduplicated per change and person). Until 30 days after the announcement a
 * customer may terminate without penalty; the contract then ends the day before the new price
 * applies. From its effective date the billing run uses the new price (`plansInForce`).
 *
 * Why the 1st of a month: invoices are monthly, in advance (BIL-3); a price that changed mid-month
 * would need a split invoice for no benefit to anyone.
 */
import { randomUUID } from 'node:crypto';
import type { Db, Executor } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { Mailer } from '../mail/mail-service.ts';
import { priceChangeWindow } from './billing-dates.ts';
import { billingRecipients, priceChangeMail } from './billing-mails.ts';
import type { PriceChangesTable } from './billing-tables.ts';
import { planByCode, type Plan } from './plans.ts';
import type { SubscriptionActor, Subscriptions, Subscription } from './subscriptions.ts';

export type PriceChange = PriceChangesTable;

/**
 * The plan table as it applies on Paris day `date`: each plan's price is that of its latest price
 * change effective on or before `date`, else the configured one. The billing run calls this for
 * the first day of the month it invoices.
 */
export async function plansInForce(db: Executor, plans: readonly Plan[], date: string): Promise<Plan[]> {
  const changes = await db
    .selectFrom('price_changes')
    .select(['plan', 'new_price_cents', 'effective_date'])
    .where('effective_date', '<=', date)
    .orderBy('effective_date', 'asc')
    .execute();
  const latest = new Map(changes.map((c) => [c.plan, Number(c.new_price_cents)]));
  return plans.map((p) => (latest.has(p.code) ? { ...p, priceCents: latest.get(p.code)! } : { ...p }));
}

export function createPriceChanges(deps: { db: Db; clock: Clock; audit: AuditService; mailer: Pick<Mailer, 'send'>; plans: readonly Plan[]; subscriptions: Subscriptions }) {
  const { db, clock, plans } = deps;

  return {
    /** BIL-7: schedules a price and notifies every affected customer; returns the change and how many people were told. */
    async schedule(input: { plan: string; newPriceCents: number; effectiveDate: string; actor: SubscriptionActor }): Promise<{ change: PriceChange; customersNotified: number; mails: number }> {
      if (!planByCode(plans, input.plan)) throw badRequest('unknown_plan', `Unknown plan "${input.plan}".`);
      if (!/^\d{4}-\d{2}-01$/.test(input.effectiveDate)) throw badRequest('effective_date_not_first', 'A new price applies from the 1st of a month (invoices are monthly, in advance).');
      const now = clock.now();
      let window: { objectionUntil: string; terminationLastDay: string };
      try {
        window = priceChangeWindow(now, input.effectiveDate);
      } catch (err) {
        throw badRequest('price_notice_too_short', (err as Error).message);
      }
      return db.transaction().execute(async (trx) => {
        const before = planByCode(await plansInForce(trx, plans, input.effectiveDate), input.plan)!;
        const change: PriceChange = {
          id: randomUUID(), plan: input.plan, old_price_cents: String(before.priceCents), new_price_cents: String(input.newPriceCents), effective_date: input.effectiveDate,
          announced_at: now, objection_until: window.objectionUntil, created_by: input.actor.type === 'staff' ? (input.actor.id ?? null) : null, created_at: now,
        };
        const inserted = await trx.insertInto('price_changes').values(change).onConflict((oc) => oc.columns(['plan', 'effective_date']).doNothing()).returningAll().executeTakeFirst();
        if (!inserted) throw conflict('price_change_exists', `The ${input.plan} plan already has a price change on ${input.effectiveDate}.`);
        const customers = await trx
          .selectFrom('subscriptions')
          .select('customer_id')
          .distinct()
          .where('plan', '=', input.plan)
          .where((eb) => eb.or([eb('ends_on', 'is', null), eb('ends_on', '>=', input.effectiveDate)]))
          .execute();
        let mails = 0;
        for (const c of customers) {
          for (const person of await billingRecipients(trx, c.customer_id)) {
            const mail = priceChangeMail(person.locale, { plan: input.plan, oldPriceCents: before.priceCents, newPriceCents: input.newPriceCents, effectiveDate: input.effectiveDate, ...window });
            await deps.mailer.send({ to: person.email, userId: person.id, template: 'billing.price_change', locale: person.locale, ...mail, dedupeKey: `billing:price-change:${inserted.id}:${person.id}` }, trx);
            mails++;
          }
        }
        await deps.audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, action: 'billing.price_change_scheduled', subjectType: 'plan', subjectId: input.plan, customerId: null, data: { id: inserted.id, newPriceCents: input.newPriceCents, effectiveDate: input.effectiveDate, customers: customers.length } }, trx);
        return { change: inserted, customersNotified: customers.length, mails };
      });
    },

    /**
     * BIL-7: the customer terminates because of a price change, within 30 days of its announcement:
     * the contract ends the day before the new price applies, without penalty.
     */
    async terminateFor(subscription: Subscription, priceChangeId: string, actor: SubscriptionActor): Promise<Subscription> {
      const change = await db.selectFrom('price_changes').selectAll().where('id', '=', priceChangeId).executeTakeFirst();
      if (!change || change.plan !== subscription.plan) throw notFound('price_change_not_found', 'No price change of this subscription’s plan has this id.');
      if (parisDate(clock.now()) > change.objection_until) throw conflict('objection_period_over', `Termination without penalty was possible until ${change.objection_until}; a normal termination notice still can be given.`);
      const { terminationLastDay } = { terminationLastDay: priceChangeWindow(change.announced_at, change.effective_date).terminationLastDay };
      return deps.subscriptions.terminate(subscription.id, { source: 'price_change', lastDay: terminationLastDay, priceChangeId, actor });
    },

    async list(): Promise<PriceChange[]> {
      return db.selectFrom('price_changes').selectAll().orderBy('effective_date', 'desc').orderBy('plan').execute();
    },
  };
}

export type PriceChanges = ReturnType<typeof createPriceChanges>;
