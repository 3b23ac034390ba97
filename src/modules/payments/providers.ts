/**
 * The payment-provider interface (BIL-10). Each adapter turns Havre's two needs into its provider's
 * API: charge an invoice through a stored payment method (card or SEPA mandate), and read its
 * webhooks — verified with the provider's own scheme — as a few normalised events. Adapters see
 * and return provider ids only: card numbers and IBANs stay at the provider.
 *
 * Bank transfer has no adapter: the customer pushes the money, staff record it (the embedded
 * default, always available).
 */

/** A webhook event, reduced to what Havre acts on. */
export interface ProviderEvent {
  /** The provider's event id (the deduplication key). */
  id: string;
  type: string;
  /** The provider object the event is about (payment intent, payment, mandate), when any. */
  objectId: string | null;
  action:
    | { kind: 'payment_succeeded'; providerPaymentId: string; amountCents: number | null }
    | { kind: 'payment_failed'; providerPaymentId: string }
    | { kind: 'method_revoked'; providerMethodId: string }
    | { kind: 'ignored' };
}

export interface ChargeRequest {
  invoiceId: string;
  amountCents: number;
  providerCustomerId: string | null;
  providerMethodId: string;
  /** `invoice:<id>:attempt:<n>`: the provider answers a retried call with the first call's result. */
  idempotencyKey: string;
}

export interface ChargeResult {
  providerPaymentId: string;
  state: 'pending' | 'succeeded' | 'failed';
}

export interface PaymentProvider {
  readonly name: 'stripe' | 'gocardless';
  /** Charges an invoice through a stored method. A network call: never inside a transaction. */
  charge(request: ChargeRequest): Promise<ChargeResult>;
  /**
   * Verifies a webhook's signature over the raw body and returns its events; throws
   * `InvalidWebhookSignature` when the signature does not verify.
   */
  parseWebhook(rawBody: Buffer, headers: Record<string, string | string[] | undefined>): ProviderEvent[];
}

/** A webhook whose signature does not verify (answered 400; nothing is changed). */
export class InvalidWebhookSignature extends Error {
  override name = 'InvalidWebhookSignature';
}

/** The single value of a header (the first when repeated). */
export function headerOf(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Provider ids are short ASCII tokens; anything else is not an id and is not stored. */
export function providerId(value: unknown): string | null {
  return typeof value === 'string' && /^[A-Za-z0-9_]{1,100}$/.test(value) ? value : null;
}
