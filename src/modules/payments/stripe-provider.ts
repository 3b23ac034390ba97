/**
 * Stripe adapter (BIL-10, card payments) over the official SDK. Cards are entered in Stripe's own
 * form (Stripe.js / Checkout) and reach Havre as a PaymentMethod id (`pm_…`): Havre keeps that id
 * and the Stripe customer id, never a card number. An invoice is charged by a PaymentIntent
 * confirmed off-session with the idempotency key `invoice:<id>:attempt:<n>`, so a retried call
 * cannot charge twice. Webhooks are verified by `stripe.webhooks.constructEvent` with the
 * endpoint's secret (timestamped HMAC, 5-minute tolerance against replays of old captures).
 */
import { createRequire } from 'node:module';
import type Stripe from 'stripe';
import { headerOf, InvalidWebhookSignature, providerId, type ChargeRequest, type ChargeResult, type PaymentProvider, type ProviderEvent } from './providers.ts';

export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  host?: string | undefined;
  port?: number | undefined;
  protocol?: 'http' | 'https' | undefined;
}

export interface StripeProvider extends PaymentProvider {
  readonly name: 'stripe';
  /** Creates (once per Havre customer: idempotency key) the Stripe customer and attaches the card's PaymentMethod to it. */
  registerCard(input: { havreCustomerId: string; providerCustomerId: string | null; paymentMethodId: string }): Promise<{ providerCustomerId: string }>;
}

function stateOf(status: string): ChargeResult['state'] {
  if (status === 'succeeded') return 'succeeded';
  if (status === 'canceled' || status === 'requires_payment_method') return 'failed';
  return 'pending'; // processing, requires_action, requires_confirmation…
}

const require = createRequire(import.meta.url);

export function createStripeProvider(settings: StripeSettings): StripeProvider {
  // The SDK (about 30 MB of memory) is loaded only when Stripe is configured.
  const StripeSdk = require('stripe') as typeof Stripe;
  const stripe = new StripeSdk(settings.secretKey, {
    ...(settings.host && { host: settings.host }),
    ...(settings.port && { port: settings.port }),
    ...(settings.protocol && { protocol: settings.protocol }),
    maxNetworkRetries: 2,
    timeout: 20_000,
  });

  return {
    name: 'stripe',

    async registerCard(input) {
      let customer = input.providerCustomerId;
      if (!customer) {
        const created = await stripe.customers.create({ metadata: { havre_customer_id: input.havreCustomerId } }, { idempotencyKey: `customer:${input.havreCustomerId}` });
        customer = created.id;
      }
      await stripe.paymentMethods.attach(input.paymentMethodId, { customer }, { idempotencyKey: `attach:${input.paymentMethodId}:${customer}` });
      return { providerCustomerId: customer };
    },

    async charge(request: ChargeRequest): Promise<ChargeResult> {
      const intent = await stripe.paymentIntents.create(
        {
          amount: request.amountCents,
          currency: 'eur',
          ...(request.providerCustomerId && { customer: request.providerCustomerId }),
          payment_method: request.providerMethodId,
          confirm: true,
          off_session: true,
          metadata: { havre_invoice_id: request.invoiceId },
        },
        { idempotencyKey: request.idempotencyKey },
      );
      return { providerPaymentId: intent.id, state: stateOf(intent.status) };
    },

    parseWebhook(rawBody, headers): ProviderEvent[] {
      const signature = headerOf(headers, 'stripe-signature');
      if (!signature) throw new InvalidWebhookSignature('missing Stripe-Signature');
      let event: ReturnType<typeof stripe.webhooks.constructEvent>;
      try {
        event = stripe.webhooks.constructEvent(rawBody, signature, settings.webhookSecret);
      } catch (err) {
        throw new InvalidWebhookSignature((err as Error).message);
      }
      const object = (event.data as { object?: { id?: unknown; amount_received?: unknown } }).object;
      const objectId = providerId(object?.id);
      const base = { id: event.id, type: event.type, objectId };
      if (event.type === 'payment_intent.succeeded' && objectId) {
        return [{ ...base, action: { kind: 'payment_succeeded', providerPaymentId: objectId, amountCents: typeof object?.amount_received === 'number' ? object.amount_received : null } }];
      }
      if ((event.type === 'payment_intent.payment_failed' || event.type === 'payment_intent.canceled') && objectId) {
        return [{ ...base, action: { kind: 'payment_failed', providerPaymentId: objectId } }];
      }
      if (event.type === 'payment_method.detached' && objectId) return [{ ...base, action: { kind: 'method_revoked', providerMethodId: objectId } }];
      return [{ ...base, action: { kind: 'ignored' } }];
    },
  };
}
