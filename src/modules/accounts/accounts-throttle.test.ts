import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import { signUp, TEST_PASSWORD, totpCode, uniqueEmail } from './accounts-fixtures.ts';
import { currentTotp } from './totp.ts';

// Low limits so the test stays short; the rule is the same at the defaults.
const MAX_ACCOUNT = 3;
const MAX_IP = 6;
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ config: { auth: { signIn: { maxFailuresPerAccount: MAX_ACCOUNT, maxFailuresPerIp: MAX_IP, windowMinutes: 15 } } } });
});
afterAll(async () => ctx?.close());
// Every test starts with empty counts for 127.0.0.1 (all requests come from it).
afterEach(() => nextWindow());

const attempt = (email: string, password: string, code?: string) => ctx.client().post('/api/v1/sessions', { email, password, ...(code && { code }) });
/** Moves past the sliding window: every count is back to zero. */
const nextWindow = () => ctx.clock.advance(16 * 60_000);

/** A six-digit code valid at none of the accepted time steps (now, and one step either side). */
function wrongCode(secret: string): string {
  const now = ctx.clock.now().getTime();
  const valid = new Set([-30_000, 0, 30_000].map((d) => currentTotp(secret, new Date(now + d))));
  for (let n = 0; ; n++) {
    const code = String(n).padStart(6, '0');
    if (!valid.has(code)) return code;
  }
}

/** A signed-up member with TOTP turned on; returns the secret. */
async function memberWithTotp(): Promise<{ email: string; secret: string; http: HttpClient }> {
  const member = await signUp(ctx);
  const start = await member.http.post('/api/v1/me/totp');
  expect(start.status).toBe(201);
  expect((await member.http.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) })).status).toBe(200);
  return { email: member.email, secret: start.body.secret, http: member.http };
}

describe('sign-in throttling', () => {
  it('[SEC-2] locks an account out after too many failures (429 with Retry-After, even with the right password), then lets it in after the window', async () => {
    const { email } = await signUp(ctx);
    for (let i = 0; i < MAX_ACCOUNT; i++) expect((await attempt(email, 'wrong password ' + i)).status).toBe(401);
    const locked = await attempt(email, TEST_PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('too_many_attempts');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    // Unknown accounts are throttled the same way: the 429 reveals nothing.
    const ghost = uniqueEmail('ghost');
    for (let i = 0; i < MAX_ACCOUNT; i++) await attempt(ghost, 'wrong password ' + i);
    expect((await attempt(ghost, 'wrong password')).status).toBe(429);

    ctx.clock.advance(retryAfter * 1000 + 1000);
    const ok = await attempt(email, TEST_PASSWORD);
    expect(ok.status).toBe(200);
  });

  it('[SEC-2] limits failures per IP across accounts', async () => {
    const victim = await signUp(ctx);
    for (let i = 0; i < MAX_IP; i++) expect((await attempt(uniqueEmail('spray'), 'wrong password ' + i)).status).toBe(401);
    const blocked = await attempt(victim.email, TEST_PASSWORD);
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('too_many_attempts');
    nextWindow();
    expect((await attempt(victim.email, TEST_PASSWORD)).status).toBe(200);
  });

  it('[SEC-2] wrong TOTP codes add up across password-only sign-ins: the "bad codes, then the password alone" cycle hits 429', async () => {
    const { email, secret } = await memberWithTotp();
    const statuses: number[] = [];
    for (let cycle = 0; cycle < 4; cycle++) {
      for (let i = 0; i < MAX_ACCOUNT - 1; i++) statuses.push((await attempt(email, TEST_PASSWORD, wrongCode(secret))).status);
      // The password alone opens a session still waiting for the code: that must not reset the count.
      const passwordOnly = await attempt(email, TEST_PASSWORD);
      statuses.push(passwordOnly.status);
      if (passwordOnly.status === 200) expect(passwordOnly.body.secondFactor).toBe('required');
    }
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_ACCOUNT);
    expect(statuses.slice(0, 4)).toEqual([401, 401, 200, 401]);
    expect(statuses.slice(4).every((s) => s === 429)).toBe(true);
    // Locked: even the right password with the right code is refused until the window ends.
    expect((await attempt(email, TEST_PASSWORD, totpCode(ctx, secret))).status).toBe(429);
    nextWindow();
    expect((await attempt(email, TEST_PASSWORD, totpCode(ctx, secret))).status).toBe(200);
  });

  it('[SEC-2] the second-factor step is throttled too, and a pending session does not reset the count', async () => {
    const { email, secret } = await memberWithTotp();
    const codes: number[] = [];
    for (let i = 0; i < MAX_ACCOUNT + 2; i++) {
      const pending = ctx.client();
      const first = await pending.post('/api/v1/sessions', { email, password: TEST_PASSWORD });
      if (first.status !== 200) {
        codes.push(first.status);
        continue;
      }
      codes.push((await pending.post('/api/v1/sessions/current/second-factor', { code: wrongCode(secret) })).status);
    }
    expect(codes).toEqual([401, 401, 401, 429, 429]);
  });

  it('[SEC-2] a full sign-in ends the account lock-out but its failures still count for the IP', async () => {
    const { email } = await signUp(ctx);
    for (let i = 0; i < MAX_ACCOUNT - 1; i++) expect((await attempt(email, 'wrong password ' + i)).status).toBe(401);
    expect((await attempt(email, TEST_PASSWORD)).status).toBe(200);
    // The account may fail again (its count restarted)…
    for (let i = 0; i < MAX_ACCOUNT - 1; i++) expect((await attempt(email, 'wrong again ' + i)).status).toBe(401);
    // …but the IP has now failed 4 times: two more and it is blocked.
    for (let i = 0; i < MAX_IP - 2 * (MAX_ACCOUNT - 1); i++) expect((await attempt(uniqueEmail('spray'), 'wrong password')).status).toBe(401);
    expect((await attempt(uniqueEmail('spray'), 'wrong password')).status).toBe(429);
  });

  it('[SEC-2] concurrent wrong passwords for one account: at most the limit are checked, the rest get 429, then even the right password is refused', async () => {
    const { email, userId } = await signUp(ctx);
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => attempt(email, `wrong password ${i}`)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_ACCOUNT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25 - MAX_ACCOUNT);
    const audited = await ctx.core.db.selectFrom('audit_log').select('seq').where('action', '=', 'auth.sign_in_failed').where('subject_id', '=', userId).execute();
    expect(audited).toHaveLength(MAX_ACCOUNT);
    expect((await attempt(email, TEST_PASSWORD)).status).toBe(429);
  });

  it('[SEC-2] concurrent wrong passwords from one IP across accounts: at most the IP limit are checked', async () => {
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => attempt(uniqueEmail('burst'), `wrong password ${i}`)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(MAX_IP);
    expect(statuses.filter((s) => s === 429)).toHaveLength(25 - MAX_IP);
  });
});
