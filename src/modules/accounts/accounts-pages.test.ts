import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { mailedToken as mailedTokenOf } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const mailedToken = (to: string, template: string) => mailedTokenOf(ctx, to, template);

function form(fields: Record<string, string>): { rawBody: string; headers: Record<string, string> } {
  return { rawBody: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}

async function signUp(email: string, locale = 'en') {
  const http = ctx.client();
  const res = await http.post('/api/v1/signup', { name: 'Page Tester', company: 'Pages SARL', email, password: 'correct horse battery', locale });
  expect(res.status).toBe(201);
  return http;
}

describe('pages behind e-mailed links', () => {
  it('[ACC-1] the verification link shows a form, and only the form confirms the address', async () => {
    const http = await signUp('page-verify@example.test');
    const token = await mailedToken('page-verify@example.test', 'accounts.verify_email');
    const page = await ctx.client().get(`/verify-email?token=${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.body).toContain('method="post" action="/verify-email"');
    expect((await http.get('/api/v1/me')).body.user.emailVerified).toBe(false); // a GET (mail scanner) changes nothing

    const done = await ctx.client().request('POST', '/verify-email', form({ token, lang: 'en' }));
    expect(done.status).toBe(200);
    expect(done.body).toContain('is confirmed');
    expect((await http.get('/api/v1/me')).body.user.emailVerified).toBe(true);

    const again = await ctx.client().request('POST', '/verify-email', form({ token, lang: 'fr' }));
    expect(again.status).toBe(400);
    expect(again.body).toContain('invalide, expiré ou déjà utilisé');
  });

  it('[ACC-6] pages follow the browser language', async () => {
    const fr = await ctx.client().request('GET', '/verify-email?token=abcdefghijklmnopqrstuvwx', { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } });
    expect(fr.body).toContain('lang="fr"');
    expect(fr.body).toContain('Confirmez votre adresse e-mail');
    const en = await ctx.client().request('GET', '/verify-email?token=abcdefghijklmnopqrstuvwx', { headers: { 'accept-language': 'de-DE,en;q=0.5' } });
    expect(en.body).toContain('Confirm your e-mail address');
  });

  it('the reset link sets a new password through the form, checking both entries', async () => {
    await signUp('page-reset@example.test');
    const anon = ctx.client();
    expect((await anon.post('/api/v1/password-resets', { email: 'page-reset@example.test' })).status).toBe(202);
    const token = await mailedToken('page-reset@example.test', 'accounts.password_reset');
    expect((await anon.get(`/reset-password?token=${token}`)).body).toContain('type="password"');
    const mismatch = await anon.request('POST', '/reset-password', form({ token, password: 'a brand new passphrase', repeat: 'another one entirely' }));
    expect(mismatch.status).toBe(400);
    const done = await anon.request('POST', '/reset-password', form({ token, password: 'a brand new passphrase', repeat: 'a brand new passphrase' }));
    expect(done.status).toBe(200);
    const signIn = await ctx.client().post('/api/v1/sessions', { email: 'page-reset@example.test', password: 'a brand new passphrase' });
    expect(signIn.status).toBe(200);
  });

  it('[ACC-2] the invitation link creates the account and joins the company', async () => {
    const owner = await signUp('page-owner@example.test');
    // Only a verified address may invite.
    expect((await owner.post('/api/v1/email-verifications', { token: await mailedToken('page-owner@example.test', 'accounts.verify_email') })).status).toBe(200);
    const customerId = (await owner.get('/api/v1/customers')).body.customers[0].id;
    expect((await owner.post(`/api/v1/customers/${customerId}/invitations`, { email: 'page-invitee@example.test', role: 'collaborator' })).status).toBe(201);
    const token = await mailedToken('page-invitee@example.test', 'accounts.invitation');
    expect((await ctx.client().get(`/invitations/accept?token=${token}`)).body).toContain('name="name"');
    const done = await ctx.client().request('POST', '/invitations/accept', form({ token, name: 'Invited Person', password: 'invited passphrase ok' }));
    expect(done.status).toBe(200);
    expect(done.body).toContain('Pages SARL');
    const members = (await owner.get(`/api/v1/customers/${customerId}/members`)).body.members;
    expect(members.map((m: { email: string }) => m.email)).toContain('page-invitee@example.test');
  });

  it('refuses form-encoded bodies on API routes (no cross-site form can reach the API)', async () => {
    const res = await ctx.client().request('POST', '/api/v1/sessions', form({ email: 'x@example.test', password: 'whatever' }));
    expect(res.status).toBe(415);
    expect(res.body.code).toBe('unsupported_media_type');
  });

  it('answers a broken link with a page, not an error document', async () => {
    const res = await ctx.client().get('/reset-password');
    expect(res.status).toBe(400);
    expect(res.body).toContain('incomplete');
    const tampered = await ctx.client().request('POST', '/verify-email', form({ token: 'x', extra: 'y' }));
    expect(tampered.status).toBe(400);
  });
});
