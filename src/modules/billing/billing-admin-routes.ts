/**
 * Staff routes of billing (`/api/v1/admin/…`, staff admin or billing for writes): termination
 * notices that came by letter or e-mail (BIL-5), price changes (BIL-7), credit notes (BIL-9).
 */
import { z } from 'zod';
import { requireStaff } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { badRequest, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import type { BillingDocuments } from './billing-documents.ts';
import { invoiceView, presentInvoice, presentPriceChange, presentSubscription, priceChangeView, subscriptionView } from './billing-presenters.ts';
import type { PriceChanges } from './price-changes.ts';
import type { Subscriptions } from './subscriptions.ts';
import type { VatTreatment } from './vat.ts';

const staffSecurity: Record<string, string[]>[] = [{ session: [] }];
const WRITERS = ['admin', 'billing'] as const;

export function billingAdminRoutes(deps: { documents: BillingDocuments; subscriptions: Subscriptions; priceChanges: PriceChanges }): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['admin'];

    r.post(
      '/api/v1/admin/termination-notices',
      {
        schema: {
          tags,
          summary: 'Record a termination notice received by letter or e-mail, at the date it was received (BIL-5; staff admin/billing)',
          body: z.strictObject({ subscriptionId: z.string().max(200), receivedAt: z.iso.datetime({ offset: true }), source: z.enum(['letter', 'email']) }),
          security: staffSecurity,
          response: { 201: subscriptionView },
        },
      },
      async (request, reply) => {
        const staff = requireStaff(request, [...WRITERS]);
        if (!isUuid(request.body.subscriptionId) || !(await deps.subscriptions.get(request.body.subscriptionId))) throw notFound('subscription_not_found');
        const sub = await deps.subscriptions.terminate(request.body.subscriptionId, { source: 'staff', channel: request.body.source, receivedAt: new Date(request.body.receivedAt), actor: { type: 'staff', id: staff.userId } });
        return reply.status(201).send(presentSubscription(sub));
      },
    );

    r.post(
      '/api/v1/admin/price-changes',
      {
        schema: {
          tags,
          summary: 'Schedule a new monthly price of a plan, from the 1st of a month at least 60 days away; every affected customer is e-mailed (BIL-7; staff admin/billing)',
          body: z.strictObject({ plan: z.string().max(20), newPriceCents: z.number().int().min(0).max(100_000_000), effectiveDate: z.iso.date() }),
          security: staffSecurity,
          response: { 201: z.object({ priceChange: priceChangeView, customersNotified: z.number() }) },
        },
      },
      async (request, reply) => {
        const staff = requireStaff(request, [...WRITERS]);
        const { change, customersNotified } = await deps.priceChanges.schedule({ ...request.body, actor: { type: 'staff', id: staff.userId } });
        return reply.status(201).send({ priceChange: presentPriceChange(change), customersNotified });
      },
    );

    r.get('/api/v1/admin/price-changes', { schema: { tags, summary: 'Every scheduled or past price change (staff)', security: staffSecurity, response: { 200: z.object({ priceChanges: z.array(priceChangeView) }) } } }, async (request) => {
      requireStaff(request);
      return { priceChanges: (await deps.priceChanges.list()).map(presentPriceChange) };
    });

    r.post(
      '/api/v1/admin/invoices/:id/credit-notes',
      {
        schema: {
          tags,
          summary: 'Correct an issued invoice with a credit note (its own gapless sequence), for the rest of the invoice or part of it (staff admin/billing)',
          params: z.strictObject({ id: z.string().max(200) }),
          body: z.strictObject({ reason: z.string().trim().min(1).max(500), amountCents: z.number().int().positive().optional().describe('Excl. VAT; default: what is not credited yet') }),
          security: staffSecurity,
          response: { 201: invoiceView },
        },
      },
      async (request, reply) => {
        requireStaff(request, [...WRITERS]);
        const invoice = await deps.documents.get(request.params.id);
        if (!invoice || invoice.kind !== 'invoice' || invoice.state !== 'issued') throw notFound('invoice_not_found');
        const credited = (await deps.documents.creditedCents(invoice.id));
        const amount = request.body.amountCents ?? Number(invoice.net_cents) - credited;
        if (amount <= 0) throw badRequest('nothing_to_credit', 'This invoice is already fully credited.');
        // The credit note carries the VAT treatment of the invoice it corrects.
        const treatment = { kind: invoice.vat_mention ? 'reverse_charge' : 'french_vat', rateBasisPoints: invoice.vat_rate_basis_points, mention: invoice.vat_mention } as VatTreatment;
        const line = { labelFr: `Avoir sur la facture ${invoice.number} : ${request.body.reason}`, labelEn: `Credit on invoice ${invoice.number}: ${request.body.reason}`, quantity: 1, unitCents: amount, amountCents: amount };
        const note = await deps.documents.creditNote(invoice.id, { lines: [line], treatment, reason: request.body.reason });
        return reply.status(201).send(presentInvoice(note));
      },
    );
  };
}
