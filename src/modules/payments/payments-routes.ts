/**
 * Routes of payments and dunning (BIL-10, BIL-11):
 *   POST /api/v1/payments/stripe/webhook         Stripe's webhook (raw body, Stripe-Signature)
 *   POST /api/v1/payments/gocardless/webhook     GoCardless' webhook (raw body, Webhook-Signature)
 *   GET  /api/v1/invoices/{id}/payments          the invoice's balance and payments (owners, administrators)
 *   POST /api/v1/customers/{id}/payment-methods/stripe|gocardless  register a card (pm_…) or a SEPA mandate (MD…) (owners, administrators)
 *   POST /api/v1/admin/invoices/{id}/payments    staff: a bank transfer received
 *   POST /api/v1/admin/invoices/{id}/charge      staff: charge the invoice through the customer's card or mandate
 *   POST /api/v1/admin/invoices/{id}/terminate   staff: terminate a customer unpaid past the grace period
 *
 * The webhooks live in their own scope where any body is kept as raw bytes: the signature is
 * computed over the exact bytes sent, so they must not be parsed and re-serialized first.
 */
import { z } from 'zod';
import { requireStaff, requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { MANAGERS, authorizeMember } from '../accounts/membership.ts';
import type { TenantActor } from '../tenants/index.ts';
import type { Payment, PaymentsService } from './payments-service.ts';

const tags = ['payments'];
const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const idParams = z.strictObject({ id: z.string().max(100) });

const paymentView = z.object({
  id: z.string(),
  provider: z.enum(['bank_transfer', 'stripe', 'gocardless']),
  amountCents: z.number().int(),
  state: z.enum(['pending', 'succeeded', 'failed']),
  receivedAt: z.string().nullable(),
  reference: z.string().nullable(),
  createdAt: z.string(),
});
const balanceView = z.object({
  invoiceId: z.string(),
  number: z.string().nullable(),
  dueDate: z.string().nullable(),
  grossCents: z.number().int(),
  owedCents: z.number().int().describe('Gross amount minus the credit notes correcting the invoice'),
  paidCents: z.number().int(),
  paid: z.boolean(),
  items: z.array(paymentView),
});

/** The whitelist of a payment shown to customers and staff. */
export function presentPayment(p: Payment): z.infer<typeof paymentView> {
  return { id: p.id, provider: p.provider, amountCents: Number(p.amount_cents), state: p.state, receivedAt: p.received_at?.toISOString() ?? null, reference: p.reference, createdAt: p.created_at.toISOString() };
}

export interface DunningActions {
  terminate(invoiceId: string, input: { actor: TenantActor; reason?: string | null }): Promise<{ tenants: string[] }>;
}

export function paymentsRoutes(service: PaymentsService, db: Parameters<typeof authorizeMember>[0], dunning: DunningActions): RoutePlugin {
  return async (app) => {
    await app.register(async (hooks) => {
      hooks.removeAllContentTypeParsers();
      hooks.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
      const r = hooks.withTypeProvider<ZodTypeProvider>();
      for (const provider of ['stripe', 'gocardless'] as const) {
        r.post(
          `/api/v1/payments/${provider}/webhook`,
          { schema: { tags, summary: `${provider === 'stripe' ? 'Stripe' : 'GoCardless'} webhook: signature verified over the raw body; each event applied once (by event id)`, response: { 200: z.object({ applied: z.number(), duplicates: z.number(), ignored: z.number() }) } } },
          async (request) => service.handleWebhook(provider, Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0), request.headers),
        );
      }
    });

    const r = app.withTypeProvider<ZodTypeProvider>();
    const actorOf = (userId: string, ip: string, staff: boolean): TenantActor => ({ type: staff ? 'staff' : 'user', id: userId, ip });

    r.get('/api/v1/invoices/:id/payments', { schema: { tags, summary: 'The payments of an invoice and whether it is paid (owners and administrators)', params: idParams, security, response: { 200: balanceView } } }, async (request) => {
      const principal = requireUser(request);
      const { balance, paid, payments } = await service.ofInvoice(request.params.id);
      await authorizeMember(db, principal, balance.customerId, MANAGERS, 'invoice_not_found');
      return { invoiceId: balance.invoiceId, number: balance.number, dueDate: balance.dueDate, grossCents: balance.grossCents, owedCents: balance.owedCents, paidCents: balance.paidCents, paid, items: payments.map(presentPayment) };
    });

    for (const provider of ['stripe', 'gocardless'] as const) {
      const field = provider === 'stripe' ? 'paymentMethodId' : 'mandateId';
      r.post(
        `/api/v1/customers/:id/payment-methods/${provider}`,
        {
          schema: {
            tags,
            summary: provider === 'stripe' ? 'Register the customer’s card by its Stripe PaymentMethod id (pm_…, from Stripe’s own form): owners and administrators' : 'Register the customer’s SEPA mandate by its GoCardless id (MD…, signed on GoCardless’ pages): owners and administrators',
            params: idParams,
            body: z.strictObject({ [field]: z.string().min(1).max(100) }),
            security,
            response: { 204: z.null() },
          },
        },
        async (request, reply) => {
          const principal = requireUser(request);
          await authorizeMember(db, principal, request.params.id, MANAGERS);
          const actor = actorOf(principal.userId, request.ip, false);
          const id = (request.body as Record<string, string>)[field]!;
          if (provider === 'stripe') await service.registerStripeCard(request.params.id, id, actor);
          else await service.registerMandate(request.params.id, id, actor);
          return reply.code(204).send(null);
        },
      );
    }

    r.post(
      '/api/v1/admin/invoices/:id/payments',
      {
        schema: {
          tags,
          summary: 'Staff: record a bank transfer received for an invoice',
          params: idParams,
          body: z.strictObject({ amountCents: z.number().int().positive().max(1e12), receivedOn: z.iso.date(), reference: z.string().trim().min(1).max(140) }),
          security,
          response: { 201: paymentView.extend({ invoicePaid: z.boolean() }) },
        },
      },
      async (request, reply) => {
        const staff = requireStaff(request, ['billing']);
        const { payment, paid } = await service.recordBankTransfer(request.params.id, { ...request.body, actor: actorOf(staff.userId, request.ip, true) });
        return reply.code(201).send({ ...presentPayment(payment), invoicePaid: paid });
      },
    );

    r.post('/api/v1/admin/invoices/:id/charge', { schema: { tags, summary: 'Staff: charge what is left on an invoice through the customer’s card or SEPA mandate', params: idParams, security, response: { 200: paymentView } } }, async (request) => {
      const staff = requireStaff(request, ['billing']);
      return presentPayment(await service.chargeInvoice(request.params.id, actorOf(staff.userId, request.ip, true)));
    });

    r.post(
      '/api/v1/admin/invoices/:id/terminate',
      { schema: { tags, summary: 'Staff: terminate at once a customer whose invoice is unpaid past the grace period (subscriptions end today, tenants cancelled)', params: idParams, body: z.strictObject({ reason: z.string().max(500).optional() }).optional(), security, response: { 200: z.object({ tenants: z.array(z.string()) }) } } },
      async (request) => {
        const staff = requireStaff(request, ['billing']);
        return dunning.terminate(request.params.id, { actor: actorOf(staff.userId, request.ip, true), reason: request.body?.reason ?? null });
      },
    );
  };
}
