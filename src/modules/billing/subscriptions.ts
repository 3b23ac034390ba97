/**
 * Subscriptions (BIL-2, BIL-5, BIL-7): a tenant in trial needs no payment method; its customer
 * picks a plan to continue (the subscription starts that Paris day, first invoiced prorata);
 * termination notices are taken any day (portal, or recorded by staff for a letter or an e-mail)
 * and take effect at the end of the month following their receipt, without partial refund.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditService } from '../audit/audit-service.ts';
import { monthOf, nextMonth, terminationLastDay } from './billing-dates.ts';
import type { SubscriptionsTable } from './billing-tables.ts';
import { planByCode, type Plan } from './plans.ts';

export type Subscription = SubscriptionsTable;

export interface SubscriptionActor {
  type: 'user' | 'staff' | 'system' | 'cli';
  id?: string | null;
}

export function createSubscriptions(deps: { db: Db; clock: Clock; audit: AuditService; plans: readonly Plan[] }) {
  const { db, clock, audit, plans } = deps;

  return {
    /**
     * The customer picks a plan for a tenant (BIL-2): the subscription starts today (Paris) and the
     * tenant becomes active. A second choice while subscribed is refused (plan changes are BIL-6's).
     */
    async subscribe(tenantId: string, planCode: string, actor: SubscriptionActor): Promise<Subscription> {
      if (!planByCode(plans, planCode)) throw badRequest('unknown_plan', `Unknown plan "${planCode}".`, { plans: plans.map((p) => p.code) });
      return db.transaction().execute(async (trx) => {
        const tenant = await trx.selectFrom('tenants').select(['id', 'customer_id', 'state']).where('id', '=', tenantId).forUpdate().executeTakeFirst();
        if (!tenant || tenant.state === 'destroyed') throw notFound('tenant_not_found');
        if (!['trial', 'active', 'suspended'].includes(tenant.state)) throw conflict('tenant_not_subscribable', `A tenant in state "${tenant.state}" cannot take a plan.`);
        const now = clock.now();
        const row: Subscription = { id: randomUUID(), tenant_id: tenantId, customer_id: tenant.customer_id, plan: planCode, started_on: parisDate(now), next_plan: null, next_plan_from: null, termination_received_at: null, termination_source: null, ends_on: null, created_at: now, updated_at: now };
        const inserted = await trx.insertInto('subscriptions').values(row).onConflict((oc) => oc.column('tenant_id').doNothing()).returningAll().executeTakeFirst();
        if (!inserted) throw conflict('already_subscribed', 'This tenant already has a subscription.');
        await trx.updateTable('tenants').set({ plan: planCode, updated_at: now }).where('id', '=', tenantId).execute();
        await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'billing.subscribed', subjectType: 'tenant', subjectId: tenantId, customerId: tenant.customer_id, data: { plan: planCode } }, trx);
        return inserted;
      });
    },

    /**
     * BIL-5: a termination notice received at `receivedAt` (now for the portal; the date of the
     * letter or e-mail when staff record it). Effective at the end of the following month. A
     * second notice does not move an earlier end.
     */
    async terminate(subscriptionId: string, input: { source: 'portal' | 'staff' | 'price_change'; receivedAt?: Date; lastDay?: string; priceChangeId?: string; channel?: 'letter' | 'email'; actor: SubscriptionActor }): Promise<Subscription> {
      const receivedAt = input.receivedAt ?? clock.now();
      if (receivedAt.getTime() > clock.now().getTime() + 60_000) throw badRequest('received_in_future', 'A notice cannot be received in the future.');
      const lastDay = input.lastDay ?? terminationLastDay(receivedAt);
      return db.transaction().execute(async (trx) => {
        const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', subscriptionId).forUpdate().executeTakeFirst();
        if (!sub) throw notFound('subscription_not_found');
        if (sub.ends_on && sub.ends_on <= lastDay) return sub;
        const updated = await trx
          .updateTable('subscriptions')
          .set({ termination_received_at: receivedAt, termination_source: input.source, ends_on: lastDay, price_change_id: input.priceChangeId ?? null, updated_at: clock.now() })
          .where('id', '=', subscriptionId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, action: 'billing.termination_notice', subjectType: 'subscription', subjectId: subscriptionId, customerId: sub.customer_id, data: { source: input.source, channel: input.channel ?? null, receivedAt: receivedAt.toISOString(), lastDay, priceChangeId: input.priceChangeId ?? null } }, trx);
        return updated;
      });
    },

    /**
     * A plan change asked by the customer: it takes effect on the 1st of next month (Paris) — the
     * current month was invoiced in advance at the current plan, and no partial refund is made
     * (BIL-5's rule) — and the run of that month invoices the new plan. Asking again replaces the
     * pending change; asking for the current plan cancels it.
     */
    async changePlan(subscriptionId: string, planCode: string, actor: SubscriptionActor): Promise<Subscription> {
      if (!planByCode(plans, planCode)) throw badRequest('unknown_plan', `Unknown plan "${planCode}".`, { plans: plans.map((p) => p.code) });
      return db.transaction().execute(async (trx) => {
        const sub = await trx.selectFrom('subscriptions').selectAll().where('id', '=', subscriptionId).forUpdate().executeTakeFirst();
        if (!sub) throw notFound('subscription_not_found');
        const from = nextMonth(monthOf(parisDate(clock.now())));
        if (sub.ends_on && sub.ends_on < `${from}-01`) throw conflict('subscription_ending', 'This subscription ends before the change would apply.');
        const same = planCode === sub.plan;
        const updated = await trx
          .updateTable('subscriptions')
          .set({ next_plan: same ? null : planCode, next_plan_from: same ? null : from, updated_at: clock.now() })
          .where('id', '=', subscriptionId)
          .returningAll()
          .executeTakeFirstOrThrow();
        await audit.record({ actorType: actor.type, actorId: actor.id ?? null, action: 'billing.plan_change', subjectType: 'subscription', subjectId: subscriptionId, customerId: sub.customer_id, data: { from: sub.plan, to: planCode, effective: same ? null : from } }, trx);
        return updated;
      });
    },

    async get(id: string): Promise<Subscription | undefined> {
      return db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** The subscriptions of some customers (a member's), oldest first. */
    async ofCustomers(customerIds: string[]): Promise<Subscription[]> {
      if (customerIds.length === 0) return [];
      return db.selectFrom('subscriptions').selectAll().where('customer_id', 'in', customerIds).orderBy('created_at').orderBy('id').execute();
    },

    async ofTenant(tenantId: string): Promise<Subscription | undefined> {
      return db.selectFrom('subscriptions').selectAll().where('tenant_id', '=', tenantId).executeTakeFirst();
    },
  };
}

export type Subscriptions = ReturnType<typeof createSubscriptions>;
