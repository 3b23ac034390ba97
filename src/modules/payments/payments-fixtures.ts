/**
 * Test helpers of the payments module (not loaded by the application): a local HTTP server that
 * answers the few Stripe endpoints Havre calls with recorded-shape JSON (the real SDK is pointed at
 * it), GoCardless webhook signing exactly as GoCardless does it, and an issued monthly invoice.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { TestContext } from '../../../test/context.ts';
import type { Workspace } from '../workspace/workspace-fixtures.ts';

export interface StripeCall {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  body: string;
}

/** A local stand-in for api.stripe.com: customers, payment method attach, payment intents. */
export async function startFakeStripe(): Promise<{ port: number; calls: StripeCall[]; close(): Promise<void> }> {
  const calls: StripeCall[] = [];
  let intents = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      calls.push({ method: req.method ?? '', path, idempotencyKey: req.headers['idempotency-key'] as string | undefined, body });
      const params = new URLSearchParams(body);
      res.setHeader('content-type', 'application/json');
      res.setHeader('request-id', `req_${calls.length}`);
      if (path === '/v1/customers') return res.end(JSON.stringify({ id: 'cus_Test1', object: 'customer', livemode: false, metadata: { havre_customer_id: params.get('metadata[havre_customer_id]') } }));
      const attach = /^\/v1\/payment_methods\/([^/]+)\/attach$/.exec(path);
      if (attach) return res.end(JSON.stringify({ id: attach[1], object: 'payment_method', type: 'card', customer: params.get('customer'), card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2030, country: 'FR' } }));
      if (path === '/v1/payment_intents') {
        intents++;
        return res.end(JSON.stringify({ id: `pi_Test${intents}`, object: 'payment_intent', amount: Number(params.get('amount')), currency: 'eur', customer: params.get('customer'), payment_method: params.get('payment_method'), status: 'processing', metadata: { havre_invoice_id: params.get('metadata[havre_invoice_id]') } }));
      }
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${path})` } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { port: typeof address === 'object' && address ? address.port : 0, calls, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** GoCardless' webhook signature: HMAC-SHA256 (hex) of the raw body with the endpoint's secret. */
export function goCardlessSignature(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

/** Subscribes the workspace's tenant to `plan` today and runs the month: returns its issued invoice. */
export async function issuedInvoiceOf(ctx: TestContext, ws: Workspace, plan = 'p19') {
  const billing = ctx.app.modules.billing;
  await billing.subscriptions.subscribe(ws.tenantId, plan, { type: 'user' });
  const month = new Date(ctx.core.clock.now()).toISOString().slice(0, 7);
  await billing.runMonth(month);
  return ctx.core.db
    .selectFrom('billing_documents')
    .selectAll()
    .where('customer_id', '=', ws.owner.customerId)
    .where('idempotency_key', 'like', 'monthly:%')
    .executeTakeFirstOrThrow();
}
