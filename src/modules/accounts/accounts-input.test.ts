import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import { mailedToken, signUp, TEST_PASSWORD, uniqueEmail, type SignedUp } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

/** What a request could have changed: row counts of the accounts tables and the owner's own rows. */
async function snapshot(owner: SignedUp): Promise<unknown> {
  const db = ctx.core.db;
  const tables = ['users', 'sessions', 'api_tokens', 'sign_in_failures', 'one_time_tokens', 'memberships', 'customers', 'invitations', 'mail_outbox'] as const;
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const row = await db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    counts[table] = Number(row.n);
  }
  const user = await db.selectFrom('users').selectAll().where('id', '=', owner.userId).executeTakeFirst();
  const customer = await db.selectFrom('customers').selectAll().where('id', '=', owner.customerId).executeTakeFirst();
  const pending = await db.selectFrom('invitations').select(['id', 'accepted_at', 'revoked_at']).where('customer_id', '=', owner.customerId).execute();
  return { counts, user, customer, pending };
}

function form(fields: Record<string, string>) {
  return { rawBody: new URLSearchParams(fields).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
}

describe('control characters in strings', () => {
  it('NUL and other control characters are a 400 on every accounts route, and change nothing', async () => {
    const owner = await signUp(ctx);
    const inviteeEmail = uniqueEmail('invitee');
    expect((await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email: inviteeEmail, role: 'collaborator' })).status).toBe(201);
    const invitation = await mailedToken(ctx, inviteeEmail, 'accounts.invitation');
    const anon = (): HttpClient => ctx.client();
    type Case = [label: string, send: (bad: string) => Promise<{ status: number }>];
    const cases: Case[] = [
      ['sign-in e-mail', (bad) => anon().post('/api/v1/sessions', { email: `${owner.email}${bad}`, password: TEST_PASSWORD })],
      ['sign-in password', (bad) => anon().post('/api/v1/sessions', { email: owner.email, password: `${TEST_PASSWORD}${bad}` })],
      ['reset e-mail', (bad) => anon().post('/api/v1/password-resets', { email: `${owner.email}${bad}` })],
      ['sign-up name', (bad) => anon().post('/api/v1/signup', { name: `Eve${bad}`, company: 'Evil SAS', email: uniqueEmail('evil'), password: TEST_PASSWORD })],
      ['sign-up company', (bad) => anon().post('/api/v1/signup', { name: 'Eve', company: `Evil${bad}SAS`, email: uniqueEmail('evil'), password: TEST_PASSWORD })],
      ['profile name', (bad) => owner.http.patch('/api/v1/me', { name: `Ada${bad}` })],
      ['token name', (bad) => owner.http.post('/api/v1/tokens', { name: `ci${bad}` })],
      ['customer name', (bad) => owner.http.patch(`/api/v1/customers/${owner.customerId}`, { name: `Acme${bad}` })],
      ['data-protection contact name', (bad) => owner.http.patch(`/api/v1/customers/${owner.customerId}`, { dataProtectionContact: { name: `Dana${bad}`, email: 'dpo@acme.example' } })],
      ['accepted invitation name', (bad) => anon().post('/api/v1/invitations/accept', { token: invitation, name: `Eve${bad}`, password: TEST_PASSWORD })],
      ['accepted invitation token', (bad) => anon().post('/api/v1/invitations/accept', { token: `${invitation}${bad}`, name: 'Eve', password: TEST_PASSWORD })],
      ['invitation form name', (bad) => anon().request('POST', '/invitations/accept', form({ token: invitation, name: `Eve${bad}`, password: TEST_PASSWORD, lang: 'en' }))],
      ['invitation form password', (bad) => anon().request('POST', '/invitations/accept', form({ token: invitation, name: 'Eve', password: `${TEST_PASSWORD}${bad}`, lang: 'en' }))],
    ];
    // NUL (PostgreSQL cannot store it), other C0 controls, DEL, and a line break in a one-line field.
    const badCharacters = ['\u0000', '\u0001', '\u001b[31m', '\u007f', '\n'];
    const before = await snapshot(owner);
    for (const [label, send] of cases) {
      for (const bad of badCharacters) {
        if (bad === '\n' && label.includes('password')) continue; // a password may hold a line break
        const res = await send(bad);
        expect(res.status, `${label} with ${JSON.stringify(bad)}`).toBe(400);
      }
    }
    expect(await snapshot(owner)).toEqual(before);
  });

  it('a postal address may span several lines, but holds no other control character', async () => {
    const owner = await signUp(ctx);
    const base = `/api/v1/customers/${owner.customerId}`;
    const ok = await owner.http.patch(base, { postalAddress: '2 quai de Seine\n75019 Paris' });
    expect(ok.status).toBe(200);
    expect(ok.body.postalAddress).toBe('2 quai de Seine\n75019 Paris');
    expect((await owner.http.patch(base, { postalAddress: '2 quai\u0000 de Seine' })).status).toBe(400);
    expect((await owner.http.patch(base, { postalAddress: '2 quai\u001b de Seine' })).status).toBe(400);
  });
});
