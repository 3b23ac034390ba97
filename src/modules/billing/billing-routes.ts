/**
 * Customer routes of billing: thin — validate, authorize, call the service, present.
 * Members of a customer read its subscriptions and invoices (any role); owners and administrators
 * subscribe, give termination notices and change the billing profile. An id outside the member's
 * customers is answered 404 (TEN-1). The public reference list (BIL-12) needs no sign-in.
 */
import { z } from 'zod';
import type { Db } from '../../db/db.ts';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';
import { ALL_ROLES, MANAGERS, authorizeMember } from '../accounts/membership.ts';
import type { Principal } from '../accounts/authn.ts';
import type { BillingDocuments } from './billing-documents.ts';
import { invoiceView, presentInvoice, presentSubscription, subscriptionView } from './billing-presenters.ts';
import type { BillingProfiles } from './billing-profile.ts';
import { renderInvoicePdf } from './invoice-pdf.ts';
import type { PriceChanges } from './price-changes.ts';
import type { Subscriptions } from './subscriptions.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const idParams = z.strictObject({ id: z.string().max(200) });

export interface BillingRouteDeps {
  db: Db;
  documents: BillingDocuments;
  subscriptions: Subscriptions;
  priceChanges: PriceChanges;
  profiles: BillingProfiles;
}

async function customersOf(db: Db, userId: string): Promise<string[]> {
  return (await db.selectFrom('memberships').select('customer_id').where('user_id', '=', userId).execute()).map((m) => m.customer_id);
}

export function billingRoutes(deps: BillingRouteDeps): RoutePlugin {
  const { db, documents, subscriptions } = deps;
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['billing'];

    /** An issued document of one of the member's customers, or 404. */
    async function memberDocument(principal: Principal, id: string) {
      const doc = await documents.get(id);
      if (!doc || doc.state !== 'issued') throw notFound('invoice_not_found');
      await authorizeMember(db, principal, doc.customer_id, ALL_ROLES, 'invoice_not_found');
      return doc;
    }

    r.get('/api/v1/subscriptions', { schema: { tags, summary: 'The subscriptions of every customer I belong to', security, response: { 200: z.object({ subscriptions: z.array(subscriptionView) }) } } }, async (request) => ({
      subscriptions: (await subscriptions.ofCustomers(await customersOf(db, requireUser(request).userId))).map(presentSubscription),
    }));

    r.post(
      '/api/v1/subscriptions',
      { schema: { tags, summary: 'Pick a plan for a tenant to continue after its trial (BIL-2; owner/administrator); no payment method needed to try', body: z.strictObject({ tenantId: z.string().max(200), plan: z.string().max(20) }), security, response: { 201: subscriptionView } } },
      async (request, reply) => {
        const principal = requireUser(request);
        const tenant = isUuid(request.body.tenantId) ? await db.selectFrom('tenants').select(['id', 'customer_id']).where('id', '=', request.body.tenantId).executeTakeFirst() : undefined;
        if (!tenant) throw notFound('tenant_not_found');
        await authorizeMember(db, principal, tenant.customer_id, MANAGERS, 'tenant_not_found');
        const sub = await subscriptions.subscribe(tenant.id, request.body.plan, { type: 'user', id: principal.userId });
        return reply.status(201).send(presentSubscription(sub));
      },
    );

    r.post(
      '/api/v1/subscriptions/:id/plan-change',
      { schema: { tags, summary: 'Change plan from the 1st of next month (the current month was invoiced in advance; owner/administrator)', params: idParams, body: z.strictObject({ plan: z.string().max(20) }), security, response: { 200: subscriptionView } } },
      async (request) => {
        const principal = requireUser(request);
        const sub = isUuid(request.params.id) ? await subscriptions.get(request.params.id) : undefined;
        if (!sub) throw notFound('subscription_not_found');
        await authorizeMember(db, principal, sub.customer_id, MANAGERS, 'subscription_not_found');
        return presentSubscription(await subscriptions.changePlan(sub.id, request.body.plan, { type: 'user', id: principal.userId }));
      },
    );

    r.post(
      '/api/v1/termination-notices',
      {
        schema: {
          tags,
          summary: 'Give a termination notice (BIL-5: effective at the end of the month following this one; no partial refund). With priceChangeId, within 30 days of a price change: ends the day before the new price applies, without penalty (BIL-7)',
          body: z.strictObject({ subscriptionId: z.string().max(200), priceChangeId: z.uuid().optional() }),
          security,
          response: { 201: subscriptionView },
        },
      },
      async (request, reply) => {
        const principal = requireUser(request);
        const sub = isUuid(request.body.subscriptionId) ? await subscriptions.get(request.body.subscriptionId) : undefined;
        if (!sub) throw notFound('subscription_not_found');
        await authorizeMember(db, principal, sub.customer_id, MANAGERS, 'subscription_not_found');
        const actor = { type: 'user' as const, id: principal.userId };
        const ended = request.body.priceChangeId ? await deps.priceChanges.terminateFor(sub, request.body.priceChangeId, actor) : await subscriptions.terminate(sub.id, { source: 'portal', actor });
        return reply.status(201).send(presentSubscription(ended));
      },
    );

    r.get(
      '/api/v1/invoices',
      { schema: { tags, summary: 'Issued invoices and credit notes of every customer I belong to, newest first', querystring: z.strictObject({ customerId: z.string().max(200).optional() }), security, response: { 200: z.object({ invoices: z.array(invoiceView) }) } } },
      async (request) => {
        const mine = await customersOf(db, requireUser(request).userId);
        const ids = request.query.customerId ? mine.filter((c) => c === request.query.customerId) : mine;
        return { invoices: (await documents.listIssued(ids)).map(presentInvoice) };
      },
    );

    r.get('/api/v1/invoices/:id', { schema: { tags, summary: 'An issued invoice or credit note', params: idParams, security, response: { 200: invoiceView } } }, async (request) =>
      presentInvoice(await memberDocument(requireUser(request), request.params.id)),
    );

    r.get(
      '/api/v1/invoices/:id/pdf',
      { schema: { tags, summary: 'The PDF of an issued invoice or credit note, in French or English (BIL-9); default: my language', params: idParams, querystring: z.strictObject({ lang: z.enum(['fr', 'en']).optional() }), security } },
      async (request, reply) => {
        const principal = requireUser(request);
        const doc = await memberDocument(principal, request.params.id);
        const corrects = doc.corrects_id ? await documents.get(doc.corrects_id) : undefined;
        const locale = request.query.lang ?? principal.locale ?? localeFromAcceptLanguage(request.headers['accept-language']);
        const pdf = renderInvoicePdf({ document: doc, locale, corrects: corrects ? { number: corrects.number, issueDate: corrects.issue_date } : null });
        return reply.header('content-type', 'application/pdf').header('content-disposition', `attachment; filename="${doc.number}.pdf"`).header('cache-control', 'private, no-store').send(pdf);
      },
    );

    r.patch(
      '/api/v1/customers/:id/billing-profile',
      {
        schema: {
          tags,
          summary: 'VAT number (format-checked against the customer’s country; null clears it) and refusal to be cited as a reference (BIL-12); owner/administrator',
          params: idParams,
          body: z.strictObject({ vatNumber: z.string().max(20).nullable().optional(), refusesReference: z.boolean().optional() }),
          security,
          response: { 200: z.object({ customerId: z.string(), vatNumber: z.string().nullable(), refusesReference: z.boolean() }) },
        },
      },
      async (request) => {
        const principal = requireUser(request);
        await authorizeMember(db, principal, request.params.id, MANAGERS);
        const p = await deps.profiles.update(request.params.id, request.body, { type: 'user', id: principal.userId });
        return { customerId: p.customerId, vatNumber: p.vatNumber, refusesReference: p.refusesReference };
      },
    );

    r.get(
      '/api/v1/public/references',
      { schema: { tags: ['public'], summary: 'Customers who may be cited as references: current subscribers who did not refuse (BIL-12)', response: { 200: z.object({ references: z.array(z.object({ name: z.string() })) }) } } },
      async () => ({ references: await deps.profiles.publicReferences() }),
    );
  };
}
