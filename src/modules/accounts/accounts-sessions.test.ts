import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withPersonal } from '../audit/audit-service.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { mailedToken, signIn, signUp, TEST_PASSWORD, totpCode, uniqueEmail } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const auditOf = (action: string, subjectId: string) =>
  ctx.core.db.selectFrom('audit_log').selectAll().where('action', '=', action).where('subject_id', '=', subjectId).orderBy('seq').execute();

describe('sessions', () => {
  it('signs in with a session cookie and signs out', async () => {
    const { email, userId } = await signUp(ctx);
    const http = ctx.client();
    const res = await http.post('/api/v1/sessions', { email: email.toUpperCase(), password: TEST_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ user: { id: userId, email }, secondFactor: 'none' });
    expect(res.body.csrfToken).toMatch(/^[0-9a-f]{64}$/);
    const setCookie = res.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Lax/i);
    const current = await http.get('/api/v1/sessions/current');
    expect(current.body).toMatchObject({ user: { id: userId }, csrfToken: res.body.csrfToken, secondFactor: 'none' });
    const cookie = http.cookie;
    expect((await http.delete('/api/v1/sessions/current')).status).toBe(204);
    expect(http.cookie).toBeNull();
    // The old cookie is dead on the server too.
    const replay = await ctx.client().request('GET', '/api/v1/me', { headers: { cookie: cookie! } });
    expect(replay.status).toBe(401);
  });

  it('answers the same 401 invalid_credentials for an unknown e-mail and a wrong password', async () => {
    const { email } = await signUp(ctx);
    const wrong = await ctx.client().post('/api/v1/sessions', { email, password: 'not the password at all' });
    const unknown = await ctx.client().post('/api/v1/sessions', { email: uniqueEmail('ghost'), password: 'not the password at all' });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body.code).toBe('invalid_credentials');
    expect(unknown.body.code).toBe('invalid_credentials');
    expect(wrong.body.detail).toBe(unknown.body.detail);
    expect(wrong.headers.get('set-cookie')).toBeNull();
  });

  it('[SEC-4] sign-ins and failed sign-ins land in the audit log, without the password', async () => {
    const { email, userId } = await signUp(ctx);
    await signIn(ctx, email);
    await ctx.client().post('/api/v1/sessions', { email, password: 'wrong password here' });
    const ok = await auditOf('auth.sign_in', userId);
    expect(ok).toHaveLength(1);
    // The chained row holds no IP nor e-mail, only a digest of them; they are beside it (ACC-5).
    expect(ok[0]).toMatchObject({ actor_type: 'user', actor_id: userId, ip: null, personal_digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const failed = await auditOf('auth.sign_in_failed', userId);
    expect(failed).toHaveLength(1);
    expect(failed[0]!.data).toEqual({ reason: 'password' });
    const personal = await ctx.core.audit.personalOf([ok[0]!.seq, failed[0]!.seq]);
    expect(withPersonal(ok[0]!, personal)).toMatchObject({ ip: '127.0.0.1' });
    expect(withPersonal(failed[0]!, personal).data).toEqual({ email, reason: 'password' });
    expect(JSON.stringify(failed[0])).not.toContain('wrong password here');
    expect((await ctx.core.audit.verify()).ok).toBe(true);
  });
});

describe('own account', () => {
  it('[ACC-3] a member views and updates their own name, phone and language', async () => {
    const { http } = await signUp(ctx, { body: { phone: '+33 6 00 00 00 00' } });
    const res = await http.patch('/api/v1/me', { name: 'Ada King', phone: '+44 20 7946 0000', locale: 'fr' });
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ name: 'Ada King', phone: '+44 20 7946 0000', locale: 'fr' });
    expect((await http.get('/api/v1/me')).body.user).toMatchObject({ name: 'Ada King', phone: '+44 20 7946 0000', locale: 'fr' });
    expect((await http.patch('/api/v1/me', { phone: null })).body.user.phone).toBeNull();
    // Fields that are not one's profile cannot be set this way.
    expect((await http.patch('/api/v1/me', { staffRole: 'admin' })).status).toBe(400);
    expect((await http.patch('/api/v1/me', { name: '' })).status).toBe(400);
    expect((await ctx.client().get('/api/v1/me')).status).toBe(401);
  });

  it('changes the password with the current one and closes the other sessions', async () => {
    const { http, email } = await signUp(ctx);
    const other = await signIn(ctx, email);
    const wrong = await http.post('/api/v1/me/password', { currentPassword: 'not my password!', newPassword: 'a brand new password' });
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('wrong_password');
    expect((await http.post('/api/v1/me/password', { currentPassword: TEST_PASSWORD, newPassword: 'a brand new password' })).status).toBe(204);
    expect((await http.get('/api/v1/me')).status).toBe(200);
    expect((await other.get('/api/v1/me')).status).toBe(401);
    expect((await ctx.client().post('/api/v1/sessions', { email, password: TEST_PASSWORD })).status).toBe(401);
    await signIn(ctx, email, 'a brand new password');
  });
});

describe('API tokens', () => {
  it('creates a token shown once, accepts it as Bearer, lists it without its value, and revokes it', async () => {
    const { http, userId } = await signUp(ctx);
    const created = await http.post('/api/v1/tokens', { name: 'CI', expiresInDays: 30 });
    expect(created.status).toBe(201);
    const { token, id, prefix } = created.body;
    expect(token).toMatch(/^hvr_/);
    expect(token.startsWith(prefix)).toBe(true);
    const stored = await ctx.core.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(stored.token_hash).not.toContain(token);

    const bearer = ctx.client();
    const me = await bearer.get('/api/v1/me', { token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(userId);
    // Bearer writes need no CSRF token: no cookie is involved.
    expect((await bearer.patch('/api/v1/me', { name: 'Via token' }, { token })).status).toBe(200);

    const list = await http.get('/api/v1/tokens');
    expect(list.body.tokens).toEqual([expect.objectContaining({ id, name: 'CI', prefix })]);
    expect(JSON.stringify(list.body)).not.toContain(token);

    expect((await http.delete(`/api/v1/tokens/${id}`)).status).toBe(204);
    const after = await bearer.get('/api/v1/me', { token });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe('invalid_token');
    expect((await http.delete(`/api/v1/tokens/${id}`)).status).toBe(404);
    expect((await http.get('/api/v1/tokens')).body.tokens).toEqual([]);
  });

  it('expires tokens, and another user cannot revoke mine', async () => {
    const a = await signUp(ctx);
    const b = await signUp(ctx);
    const { body } = await a.http.post('/api/v1/tokens', { name: 'short', expiresInDays: 1 });
    expect((await b.http.delete(`/api/v1/tokens/${body.id}`)).status).toBe(404);
    expect((await ctx.client().get('/api/v1/me', { token: body.token })).status).toBe(200);
    ctx.clock.advance(25 * 3_600_000);
    expect((await ctx.client().get('/api/v1/me', { token: body.token })).status).toBe(401);
  });
});

describe('what an API token cannot do', () => {
  it('[SEC-2] an API token cannot manage the second factor, change the password or mint tokens (403 session_required)', async () => {
    const { http, userId } = await signUp(ctx);
    const start = await http.post('/api/v1/me/totp');
    expect((await http.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) })).status).toBe(200);
    const token = (await http.post('/api/v1/tokens', { name: 'ci' })).body.token;
    const before = await ctx.core.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow();
    const bearer = ctx.client();
    ctx.clock.advance(60_000); // a fresh TOTP step, so a refusal is not a replayed code
    const answers = [
      await bearer.post('/api/v1/me/totp', undefined, { token }),
      await bearer.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) }, { token }),
      await bearer.request('DELETE', '/api/v1/me/totp', { body: { code: totpCode(ctx, start.body.secret) }, token }),
      await bearer.post('/api/v1/me/password', { currentPassword: TEST_PASSWORD, newPassword: 'taken over by token' }, { token }),
      await bearer.post('/api/v1/tokens', { name: 'more' }, { token }),
    ];
    for (const res of answers) {
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('session_required');
    }
    expect(await ctx.core.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirstOrThrow()).toEqual(before);
    expect((await http.get('/api/v1/tokens')).body.tokens).toHaveLength(1);
    // The token still works for what it is for.
    expect((await bearer.get('/api/v1/me', { token })).status).toBe(200);
  });
});

describe('API tokens and password changes', () => {
  const live = async (token: string) => (await ctx.client().get('/api/v1/me', { token })).status;
  const changedMailText = async (to: string) => {
    const mail = (await ctx.core.mailer.list({ to })).find((m) => m.template === 'accounts.password_changed');
    return (await ctx.core.mailer.show(mail!.id))!.text;
  };

  it('a password change revokes every API token of the user, and the mail says so', async () => {
    const { http, email, userId } = await signUp(ctx);
    const tokens = [(await http.post('/api/v1/tokens', { name: 'ci' })).body.token, (await http.post('/api/v1/tokens', { name: 'laptop' })).body.token];
    const other = await signUp(ctx);
    const othersToken = (await other.http.post('/api/v1/tokens', { name: 'ci' })).body.token;
    for (const t of [...tokens, othersToken]) expect(await live(t)).toBe(200);

    expect((await http.post('/api/v1/me/password', { currentPassword: TEST_PASSWORD, newPassword: 'a brand new password' })).status).toBe(204);
    for (const t of tokens) expect(await live(t)).toBe(401);
    expect(await live(othersToken)).toBe(200);
    expect((await http.get('/api/v1/tokens')).body.tokens).toEqual([]);
    expect(await changedMailText(email)).toContain('all your API tokens revoked');
    expect((await auditOf('auth.password_changed', userId))[0]!.data).toMatchObject({ tokensRevoked: 2 });
  });

  it('a password reset revokes every API token of the user (the account may have been taken over), and the mail says so in French too', async () => {
    const { http, email } = await signUp(ctx, { body: { locale: 'fr' } });
    const token = (await http.post('/api/v1/tokens', { name: 'ci' })).body.token;
    expect(await live(token)).toBe(200);
    await ctx.client().post('/api/v1/password-resets', { email });
    const reset = await mailedToken(ctx, email, 'accounts.password_reset');
    expect((await ctx.client().post('/api/v1/password-resets/complete', { token: reset, password: 'my new long password' })).status).toBe(204);
    expect(await live(token)).toBe(401);
    expect(await changedMailText(email)).toContain("tous vos jetons d'API révoqués");
  });
});

describe('password reset', () => {
  it('always answers 202, mails a one-time token, sets the password and closes every session', async () => {
    const { http, email, userId } = await signUp(ctx);
    const unknown = uniqueEmail('nobody');
    const none = await ctx.client().post('/api/v1/password-resets', { email: unknown });
    expect(none.status).toBe(202);
    expect(await ctx.core.mailer.list({ to: unknown })).toEqual([]);

    const res = await ctx.client().post('/api/v1/password-resets', { email });
    expect(res.status).toBe(202);
    expect(res.body).toEqual(none.body);
    const token = await mailedToken(ctx, email, 'accounts.password_reset');
    expect((await ctx.client().post('/api/v1/password-resets/complete', { token, password: 'short' })).status).toBe(400);
    expect((await ctx.client().post('/api/v1/password-resets/complete', { token, password: 'my new long password' })).status).toBe(204);
    expect((await http.get('/api/v1/me')).status).toBe(401);
    expect((await ctx.client().post('/api/v1/sessions', { email, password: TEST_PASSWORD })).status).toBe(401);
    await signIn(ctx, email, 'my new long password');
    const again = await ctx.client().post('/api/v1/password-resets/complete', { token, password: 'another long password' });
    expect(again.status).toBe(400);
    expect(again.body.code).toBe('invalid_token');
    expect(await auditOf('auth.password_reset', userId)).toHaveLength(1);
    expect((await ctx.core.mailer.list({ to: email })).map((m) => m.template)).toContain('accounts.password_changed');
  });

  it('answers a reset request before the address is even looked up: a known address cannot be told from an unknown one by timing', async () => {
    const { email } = await signUp(ctx);
    // Block the known-address work (its first query on one_time_tokens) from another connection.
    const blocker = new pg.Client({ connectionString: ctx.core.config.databaseUrl! });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE one_time_tokens IN ACCESS EXCLUSIVE MODE');
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('no answer within 2 s'), 2000));
      const answer = await Promise.race([ctx.client().post('/api/v1/password-resets', { email }).then((r) => r.status), timeout]);
      expect(answer).toBe(202);
      expect((await ctx.core.mailer.list({ to: email })).map((m) => m.template)).not.toContain('accounts.password_reset');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    // Once unblocked, the work finishes after the answer: the link is mailed.
    expect(await mailedToken(ctx, email, 'accounts.password_reset')).toMatch(/^[\w-]{16,}$/);
  });

  it('refuses an expired reset token', async () => {
    const { email } = await signUp(ctx);
    await ctx.client().post('/api/v1/password-resets', { email });
    const token = await mailedToken(ctx, email, 'accounts.password_reset');
    ctx.clock.advance((ctx.core.config.auth.resetTtlMinutes + 1) * 60_000);
    expect((await ctx.client().post('/api/v1/password-resets/complete', { token, password: 'my new long password' })).status).toBe(400);
  });
});
