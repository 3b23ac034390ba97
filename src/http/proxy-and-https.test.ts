import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../test/context.ts';

/** Production refuses placeholder seller details (invoices, BIL-9). */
const REAL_SELLER = { name: 'Havre', legalForm: 'SAS', shareCapital: '10 000 €', address: '12 rue des Docks, 76600 Le Havre, France', siren: '732829320', rcsCity: 'Le Havre', vatNumber: 'FR44732829320' };

/** Two apps: one in production behind a trusted proxy on loopback, one default (no proxy trusted). */
let prod: TestContext;
let plain: TestContext;
beforeAll(async () => {
  [prod, plain] = await Promise.all([createTestContext({ config: { env: 'production', http: { trustProxy: '127.0.0.1' }, billing: { seller: REAL_SELLER } } }), createTestContext()]);
});
afterAll(async () => {
  await Promise.all([prod?.close(), plain?.close()]);
});

async function failedSignInIp(ctx: TestContext, email: string, forwardedFor: string): Promise<string> {
  const res = await ctx.client().request('POST', '/api/v1/sessions', { body: { email, password: 'not the password' }, headers: { 'x-forwarded-for': forwardedFor } });
  expect(res.status).toBe(401);
  const row = await ctx.core.db.selectFrom('sign_in_failures').select('ip').where('email', '=', email).executeTakeFirstOrThrow();
  return row.ip;
}

describe('HTTPS and proxies', () => {
  it('[SEC-2] sends HSTS on every answer in production', async () => {
    const res = await prod.client().get('/healthz');
    expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    expect((await plain.client().get('/healthz')).headers.get('strict-transport-security')).toBeNull();
  });

  it('believes X-Forwarded-For only from a trusted proxy (sign-in limits and audit see the client)', async () => {
    expect(await failedSignInIp(prod, 'proxied@example.test', '203.0.113.7')).toBe('203.0.113.7');
    expect(await failedSignInIp(plain, 'direct@example.test', '203.0.113.7')).toBe('127.0.0.1');
  });

  it('refuses form bodies on API routes whatever the case of the media type', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'APPLICATION/X-WWW-FORM-URLENCODED', ' Application/X-Www-Form-Urlencoded; charset=UTF-8']) {
      const res = await plain.client().request('POST', '/api/v1/sessions', { rawBody: 'email=a%40b.test&password=whatever', headers: { 'content-type': type } });
      expect(res.status, type).toBe(415);
      expect(res.headers.get('set-cookie')).toBeNull();
    }
  });
});

describe('hostile input', () => {
  it('answers NUL characters anywhere in a request with a 400, never a 500', async () => {
    const http = plain.client();
    const cases: [string, string, unknown][] = [
      ['POST', '/api/v1/sessions', { email: 'a\u0000@b.test', password: 'x' }],
      ['POST', '/api/v1/signup', { name: 'N\u0000', company: 'C', email: 'nul@example.test', password: 'long enough password' }],
      ['POST', '/api/v1/password-resets', { email: 'nul\u0000@example.test' }],
      ['POST', '/api/v1/sessions', { ['e\u0000mail']: 'x' }],
    ];
    for (const [method, url, body] of cases) {
      const res = await http.request(method, url, { body });
      expect(res.status, url).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    expect((await http.get('/api/v1/tenants?x=%00')).status).toBe(400);
    expect(await plain.core.db.selectFrom('users').select('id').where('email', '=', 'nul@example.test').executeTakeFirst()).toBeUndefined();
  });
});
