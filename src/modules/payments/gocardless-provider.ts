/**
 * GoCardless adapter (BIL-10, SEPA direct debit) over the official SDK. The customer signs the
 * mandate on GoCardless' pages (billing request flow): Havre keeps the mandate id (`MD…`) and the
 * GoCardless customer id, never the IBAN. An invoice is collected by a payment against the
 * mandate with the idempotency key `invoice:<id>:attempt:<n>` (GoCardless' Idempotency-Key).
 * Webhooks are verified by the SDK's `webhooks.parse(body, secret, signature)` (HMAC-SHA256 of
 * the raw body, `Webhook-Signature` header).
 *
 * The SDK only knows GoCardless' live and sandbox hosts; `client` lets a caller hand in another
 * client with the same methods (the tests do: no network).
 */
import { createRequire } from 'node:module';
import type * as GoCardlessClientModule from 'gocardless-nodejs/client';
import type * as GoCardlessConstants from 'gocardless-nodejs/constants';
import type * as GoCardlessWebhooks from 'gocardless-nodejs/webhooks';
import { headerOf, InvalidWebhookSignature, providerId, type ChargeRequest, type ChargeResult, type PaymentProvider, type ProviderEvent } from './providers.ts';

export interface GoCardlessSettings {
  accessToken: string;
  webhookSecret: string;
  environment: 'sandbox' | 'live';
}

/** The part of the SDK client the adapter uses. */
export interface GoCardlessApi {
  payments: { create(params: { amount: string; currency: 'EUR'; links: { mandate: string }; metadata?: Record<string, string> }, idempotencyKey?: string): Promise<{ id?: string; status?: string }> };
  mandates: { get(id: string): Promise<{ id?: string; status?: string; links?: { customer?: string } }> };
}

export interface GoCardlessProvider extends PaymentProvider {
  readonly name: 'gocardless';
  /** Checks a mandate signed on GoCardless' pages and returns its customer id. */
  registerMandate(mandateId: string): Promise<{ providerCustomerId: string | null }>;
}

const SUCCEEDED = new Set(['confirmed', 'paid_out']);
const FAILED = new Set(['failed', 'cancelled', 'charged_back', 'late_failure_settled']);
const MANDATE_ENDED = new Set(['cancelled', 'failed', 'expired', 'blocked']);

const require = createRequire(import.meta.url);

/** The SDK client for `settings`; the SDK (about 25 MB of memory with its HTTP stack) is loaded only when GoCardless is configured. */
function sdkClient(settings: GoCardlessSettings): GoCardlessApi {
  const { GoCardlessClient } = require('gocardless-nodejs/client') as typeof GoCardlessClientModule;
  const { Environments } = require('gocardless-nodejs/constants') as typeof GoCardlessConstants;
  return new GoCardlessClient(settings.accessToken, settings.environment === 'live' ? Environments.Live : Environments.Sandbox) as unknown as GoCardlessApi;
}

export function createGoCardlessProvider(settings: GoCardlessSettings, client?: GoCardlessApi): GoCardlessProvider {
  const api: GoCardlessApi = client ?? sdkClient(settings);
  const { parse } = require('gocardless-nodejs/webhooks') as typeof GoCardlessWebhooks;

  return {
    name: 'gocardless',

    async registerMandate(mandateId) {
      const mandate = await api.mandates.get(mandateId);
      if (!mandate.status || MANDATE_ENDED.has(mandate.status)) throw new Error(`mandate ${mandateId} is not usable (${mandate.status ?? 'unknown'})`);
      return { providerCustomerId: providerId(mandate.links?.customer) };
    },

    async charge(request: ChargeRequest): Promise<ChargeResult> {
      const payment = await api.payments.create(
        { amount: String(request.amountCents), currency: 'EUR', links: { mandate: request.providerMethodId }, metadata: { havre_invoice_id: request.invoiceId } },
        request.idempotencyKey,
      );
      const id = providerId(payment.id);
      if (!id) throw new Error('GoCardless answered without a payment id');
      return { providerPaymentId: id, state: payment.status && FAILED.has(payment.status) ? 'failed' : 'pending' };
    },

    parseWebhook(rawBody, headers): ProviderEvent[] {
      const signature = headerOf(headers, 'webhook-signature');
      if (!signature) throw new InvalidWebhookSignature('missing Webhook-Signature');
      let events: { id?: string; resource_type?: string; action?: string; links?: { payment?: string; mandate?: string } }[];
      try {
        events = parse(rawBody, settings.webhookSecret, signature) as typeof events;
      } catch (err) {
        throw new InvalidWebhookSignature(String((err as { message?: string }).message ?? err));
      }
      const out: ProviderEvent[] = [];
      for (const e of events) {
        const id = providerId(e.id);
        if (!id) continue;
        const type = `${e.resource_type ?? '?'}.${e.action ?? '?'}`.slice(0, 100);
        const payment = providerId(e.links?.payment);
        const mandate = providerId(e.links?.mandate);
        if (e.resource_type === 'payments' && payment && SUCCEEDED.has(e.action ?? '')) out.push({ id, type, objectId: payment, action: { kind: 'payment_succeeded', providerPaymentId: payment, amountCents: null } });
        else if (e.resource_type === 'payments' && payment && FAILED.has(e.action ?? '')) out.push({ id, type, objectId: payment, action: { kind: 'payment_failed', providerPaymentId: payment } });
        else if (e.resource_type === 'mandates' && mandate && MANDATE_ENDED.has(e.action ?? '')) out.push({ id, type, objectId: mandate, action: { kind: 'method_revoked', providerMethodId: mandate } });
        else out.push({ id, type, objectId: payment ?? mandate, action: { kind: 'ignored' } });
      }
      return out;
    },
  };
}
