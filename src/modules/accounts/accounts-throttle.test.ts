import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { signUp, TEST_PASSWORD, uniqueEmail } from './accounts-fixtures.ts';

// Low limits so the test stays short; the rule is the same at the defaults.
let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ config: { auth: { signIn: { maxFailuresPerAccount: 3, maxFailuresPerIp: 6, windowMinutes: 15 } } } });
});
afterAll(async () => ctx?.close());

const attempt = (email: string, password: string) => ctx.client().post('/api/v1/sessions', { email, password });

describe('sign-in throttling', () => {
  it('[SEC-2] locks an account out after too many failures (429 with Retry-After, even with the right password), then lets it in after the window', async () => {
    const { email } = await signUp(ctx);
    for (let i = 0; i < 3; i++) expect((await attempt(email, 'wrong password ' + i)).status).toBe(401);
    const locked = await attempt(email, TEST_PASSWORD);
    expect(locked.status).toBe(429);
    expect(locked.body.code).toBe('too_many_attempts');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    // Unknown accounts are throttled the same way: the 429 reveals nothing.
    const ghost = uniqueEmail('ghost');
    for (let i = 0; i < 3; i++) await attempt(ghost, 'wrong password ' + i);
    expect((await attempt(ghost, 'wrong password')).status).toBe(429);

    ctx.clock.advance(retryAfter * 1000 + 1000);
    const ok = await attempt(email, TEST_PASSWORD);
    expect(ok.status).toBe(200);
    ctx.clock.advance(16 * 60_000);
  });

  it('[SEC-2] limits failures per IP across accounts', async () => {
    const victim = await signUp(ctx);
    for (let i = 0; i < 6; i++) expect((await attempt(uniqueEmail('spray'), 'wrong password ' + i)).status).toBe(401);
    const blocked = await attempt(victim.email, TEST_PASSWORD);
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('too_many_attempts');
    ctx.clock.advance(16 * 60_000);
    expect((await attempt(victim.email, TEST_PASSWORD)).status).toBe(200);
  });
});
