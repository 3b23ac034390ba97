import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { mailedToken, signUp, TEST_PASSWORD, uniqueEmail } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const countUsers = async () => Number((await ctx.core.db.selectFrom('users').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

describe('sign-up and e-mail verification', () => {
  it('[ACC-1] sign-up collects name, company, e-mail and password; the owner is the designated contact; the e-mail stays unverified until the mailed token is used', async () => {
    const http = ctx.client();
    const email = uniqueEmail('acc1');
    const res = await http.post('/api/v1/signup', { name: 'Ada Lovelace', company: 'Analytical SARL', email: email.toUpperCase(), password: TEST_PASSWORD });
    expect(res.status).toBe(201);
    expect(res.body.user).toMatchObject({ email, name: 'Ada Lovelace', phone: null, emailVerified: false, staffRole: null });
    expect(res.body.customer).toMatchObject({ name: 'Analytical SARL', role: 'owner', contactUserId: res.body.user.id, postalAddress: null, country: null });
    expect(http.cookie).toMatch(/^havre_session=/);
    expect(res.body.csrfToken).toMatch(/^[0-9a-f]{64}$/);

    // The session works at once; the account is unverified.
    const me = await http.get('/api/v1/me');
    expect(me.status).toBe(200);
    expect(me.body.user.emailVerified).toBe(false);
    expect(me.body.customers).toEqual([{ id: res.body.customer.id, name: 'Analytical SARL', role: 'owner' }]);

    // The verification mail links to the public URL with a token.
    const [mail] = await ctx.core.mailer.list({ to: email });
    expect(mail!.template).toBe('accounts.verify_email');
    const text = (await ctx.core.mailer.show(mail!.id))!.text;
    expect(text).toMatch(/http:\/\/localhost:8080\/verify-email\?token=[\w-]+/);

    expect((await http.post('/api/v1/email-verifications', { token: 'x'.repeat(43) })).status).toBe(400);
    const token = await mailedToken(ctx, email, 'accounts.verify_email');
    const verified = await ctx.client().post('/api/v1/email-verifications', { token });
    expect(verified.status).toBe(200);
    expect(verified.body.user.emailVerified).toBe(true);
    expect((await http.get('/api/v1/me')).body.user.emailVerified).toBe(true);
    // One-time.
    const again = await ctx.client().post('/api/v1/email-verifications', { token });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('invalid_token');
  });

  it('[ACC-1] phone, postal address and country are optional, and stored when given', async () => {
    const { http, customerId } = await signUp(ctx, { body: { phone: '+33 1 23 45 67 89', postalAddress: '1 rue de la Paix\n75002 Paris', country: 'FR' } });
    const me = await http.get('/api/v1/me');
    expect(me.body.user.phone).toBe('+33 1 23 45 67 89');
    const customer = await http.get(`/api/v1/customers/${customerId}`);
    expect(customer.body).toMatchObject({ postalAddress: '1 rue de la Paix\n75002 Paris', country: 'FR' });
    const bad = await ctx.client().post('/api/v1/signup', { name: 'A', company: 'B', email: uniqueEmail(), password: TEST_PASSWORD, country: 'ZZ' });
    expect(bad.status).toBe(400);
  });

  it('[ACC-1] refuses a sign-up without a required field or with a short password, creating nothing', async () => {
    const before = await countUsers();
    const base = { name: 'Bob', company: 'Bob SA', email: uniqueEmail(), password: TEST_PASSWORD };
    for (const field of ['name', 'company', 'email', 'password'] as const) {
      const body: Record<string, unknown> = { ...base };
      delete body[field];
      const res = await ctx.client().post('/api/v1/signup', body);
      expect(res.status, field).toBe(400);
      expect(res.body.code).toBe('invalid_request');
    }
    const short = await ctx.client().post('/api/v1/signup', { ...base, password: 'short-pw' });
    expect(short.status).toBe(400);
    expect(await countUsers()).toBe(before);
  });

  it('[ACC-1] an e-mail address can sign up only once (409 email_taken, case-insensitive)', async () => {
    const { email } = await signUp(ctx, { verify: false });
    const res = await ctx.client().post('/api/v1/signup', { name: 'Other', company: 'Other SA', email: email.toUpperCase(), password: TEST_PASSWORD });
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('email_taken');
  });

  it('[ACC-1] the verification token expires', async () => {
    const { http, email } = await signUp(ctx, { verify: false });
    const token = await mailedToken(ctx, email, 'accounts.verify_email');
    ctx.clock.advance((ctx.core.config.auth.verificationTtlHours + 1) * 3_600_000);
    expect((await http.post('/api/v1/email-verifications', { token })).status).toBe(400);
    // A new mail can be asked for, and its token works.
    expect((await http.post('/api/v1/email-verifications/resend')).status).toBe(202);
    const fresh = await mailedToken(ctx, email, 'accounts.verify_email');
    expect(fresh).not.toBe(token);
    expect((await http.post('/api/v1/email-verifications', { token: fresh })).status).toBe(200);
    expect((await http.post('/api/v1/email-verifications/resend')).body.code).toBe('already_verified');
  });

  it('[ACC-6] the verification mail is in French or English, from the locale or the browser language', async () => {
    const fr = uniqueEmail('fr');
    await ctx.client().post('/api/v1/signup', { name: 'Jean', company: 'Dupont SARL', email: fr, password: TEST_PASSWORD, locale: 'fr' });
    expect((await ctx.core.mailer.list({ to: fr }))[0]).toMatchObject({ locale: 'fr', subject: 'Confirmez votre adresse e-mail' });
    const browser = uniqueEmail('fr2');
    const res = await ctx.client().request('POST', '/api/v1/signup', { body: { name: 'Marie', company: 'Curie SA', email: browser, password: TEST_PASSWORD }, headers: { 'accept-language': 'fr-FR,fr;q=0.9,en;q=0.8' } });
    expect(res.body.user.locale).toBe('fr');
    const en = uniqueEmail('en');
    await ctx.client().post('/api/v1/signup', { name: 'John', company: 'Smith Ltd', email: en, password: TEST_PASSWORD, locale: 'en' });
    expect((await ctx.core.mailer.list({ to: en }))[0]).toMatchObject({ locale: 'en', subject: 'Confirm your e-mail address' });
  });
});

describe('request hygiene', () => {
  it('rejects unknown fields (400), invalid JSON (400) and oversize bodies (413)', async () => {
    const unknown = await ctx.client().post('/api/v1/signup', { name: 'A', company: 'B', email: uniqueEmail(), password: TEST_PASSWORD, staffRole: 'admin' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.code).toBe('invalid_request');
    const { http } = await signUp(ctx);
    const sneaky = await http.patch('/api/v1/me', { name: 'X', emailVerified: true });
    expect(sneaky.status).toBe(400);

    const invalid = await ctx.client().request('POST', '/api/v1/sessions', { rawBody: '{"email": ', headers: { 'content-type': 'application/json' } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe('invalid_json');

    const big = await ctx.client().post('/api/v1/signup', { name: 'A', company: 'B', email: uniqueEmail(), password: TEST_PASSWORD, postalAddress: 'x'.repeat(ctx.core.config.http.bodyLimitBytes + 10) });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('payload_too_large');
  });

  it('[SEC-2] CSRF: a cookie-authenticated write without X-CSRF-Token is refused with 403 csrf_failed', async () => {
    const { http } = await signUp(ctx);
    const token = http.csrfToken;
    http.dropCsrf();
    const res = await http.patch('/api/v1/me', { name: 'Mallory' });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('csrf_failed');
    const wrong = await http.request('PATCH', '/api/v1/me', { body: { name: 'Mallory' }, headers: { 'x-csrf-token': 'f'.repeat(64) } });
    expect(wrong.status).toBe(403);
    expect((await http.get('/api/v1/me')).body.user.name).toBe('Ada Owner');
    // GET /sessions/current gives the token back (e.g. after a page reload); with it the write passes.
    const current = await http.get('/api/v1/sessions/current');
    expect(current.body.csrfToken).toBe(token);
    expect((await http.patch('/api/v1/me', { name: 'Ada L.' })).status).toBe(200);
  });
});

describe('passwords', () => {
  it('[SEC-1] the stored hash is Argon2id; the password is in no table, no API answer and no e-mail', async () => {
    const password = `Unique-Secret-${Date.now()}-pw`;
    const http = ctx.client();
    const email = uniqueEmail('sec1');
    const answers: string[] = [];
    const keep = (r: { body: unknown }) => answers.push(JSON.stringify(r.body));
    keep(await http.post('/api/v1/signup', { name: 'Sec One', company: 'Sec SA', email, password }));
    keep(await http.get('/api/v1/me'));
    keep(await ctx.client().post('/api/v1/sessions', { email, password }));
    keep(await ctx.client().post('/api/v1/sessions', { email, password: password + 'x' }));
    const newPassword = password + '-new';
    keep(await http.post('/api/v1/me/password', { currentPassword: password, newPassword }));
    await ctx.client().post('/api/v1/password-resets', { email });
    const resetToken = await mailedToken(ctx, email, 'accounts.password_reset');
    const finalPassword = password + '-reset';
    keep(await ctx.client().post('/api/v1/password-resets/complete', { token: resetToken, password: finalPassword }));

    const user = await ctx.core.db.selectFrom('users').select('password_hash').where('email', '=', email).executeTakeFirstOrThrow();
    expect(user.password_hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);

    const tables = await sql<{ tablename: string }>`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`.execute(ctx.core.db);
    expect(tables.rows.length).toBeGreaterThan(5);
    for (const { tablename } of tables.rows) {
      const rows = await sql<{ j: string }>`SELECT row_to_json(t)::text AS j FROM ${sql.table(tablename)} t`.execute(ctx.core.db);
      for (const { j } of rows.rows) {
        for (const p of [password, newPassword, finalPassword]) expect(j, tablename).not.toContain(p);
      }
    }
    for (const a of answers) for (const p of [password, newPassword, finalPassword]) expect(a).not.toContain(p);
    for (const m of await ctx.core.mailer.list({ limit: 1000 })) {
      const text = (await ctx.core.mailer.show(m.id))!.text;
      for (const p of [password, newPassword, finalPassword]) expect(text).not.toContain(p);
    }
  });
});
