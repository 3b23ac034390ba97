import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createAccountsRepo } from './accounts-repo.ts';
import { purgeSignInFailures } from './accounts-jobs.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('accounts jobs', () => {
  it('deletes failed sign-ins (e-mail and IP) once they are a day old, and keeps the recent ones', async () => {
    const now = new Date('2026-11-23T12:00:00Z');
    const at = (hoursAgo: number) => new Date(now.getTime() - hoursAgo * 3_600_000);
    await ctx.core.db
      .insertInto('sign_in_failures')
      .values([
        { email: 'old@example.test', ip: '192.0.2.1', at: at(25) },
        { email: 'recent@example.test', ip: '192.0.2.2', at: at(23) },
      ])
      .execute();
    await purgeSignInFailures({ users: createAccountsRepo(ctx.core.db), windowMinutes: 15 }, now);
    const left = await ctx.core.db.selectFrom('sign_in_failures').select('email').execute();
    expect(left.map((r) => r.email)).toEqual(['recent@example.test']);
  });
});
