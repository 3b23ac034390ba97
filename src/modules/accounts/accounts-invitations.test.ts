import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { addMember, mailedToken, signUp, TEST_PASSWORD, uniqueEmail } from './accounts-fixtures.ts';
import { MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR } from './invitations-service.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const accept = (token: string) => ctx.client().post('/api/v1/invitations/accept', { token, name: 'Invitee', password: TEST_PASSWORD });
const userExists = async (email: string) => (await ctx.core.db.selectFrom('users').select('id').where('email', '=', email).executeTakeFirst()) !== undefined;

describe("an invitation is only as good as its sender's current rights", () => {
  it('[ACC-2] accepting re-checks that the inviter may still grant the role (400 invitation_no_longer_valid)', async () => {
    const owner = await signUp(ctx);
    const admin = await addMember(ctx, owner, 'administrator');
    const email = uniqueEmail('late');
    expect((await admin.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role: 'collaborator' })).status).toBe(201);
    const token = await mailedToken(ctx, email, 'accounts.invitation');
    const setAdminRole = (role: 'administrator' | 'collaborator') =>
      ctx.core.db.updateTable('memberships').set({ role }).where('customer_id', '=', owner.customerId).where('user_id', '=', admin.userId).execute();

    // Demoted without the service's clean-up (as by a change racing the acceptance): the invitation is still pending.
    await setAdminRole('collaborator');
    const refused = await accept(token);
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('invitation_no_longer_valid');
    expect(await userExists(email)).toBe(false);

    // Nothing was used up: once the inviter may grant the role again, the same link works.
    await setAdminRole('administrator');
    const ok = await accept(token);
    expect(ok.status).toBe(200);
    expect(ok.body.customer).toMatchObject({ id: owner.customerId, role: 'collaborator' });
  });

  it('[ACC-2] removing a member revokes the invitations they sent; demoting one revokes those they may no longer grant', async () => {
    const owner = await signUp(ctx);
    const coOwner = await addMember(ctx, owner, 'owner');
    const admin = await addMember(ctx, owner, 'administrator');
    const base = `/api/v1/customers/${owner.customerId}`;
    const sent: Record<string, string> = {};
    for (const [label, http, role] of [
      ['ownerByCoOwner', coOwner.http, 'owner'],
      ['collaboratorByCoOwner', coOwner.http, 'collaborator'],
      ['collaboratorByAdmin', admin.http, 'collaborator'],
    ] as const) {
      const email = uniqueEmail(label.toLowerCase());
      expect((await http.post(`${base}/invitations`, { email, role })).status).toBe(201);
      sent[label] = await mailedToken(ctx, email, 'accounts.invitation');
    }

    expect((await owner.http.patch(`${base}/members/${coOwner.userId}`, { role: 'administrator' })).status).toBe(200);
    expect((await owner.http.delete(`${base}/members/${admin.userId}`)).status).toBe(204);

    for (const label of ['ownerByCoOwner', 'collaboratorByAdmin']) {
      const res = await accept(sent[label]!);
      expect(res.status, label).toBe(400);
      expect(res.body.code, label).toBe('invalid_token');
    }
    // An administrator may still grant the collaborator role: that invitation stands.
    expect((await accept(sent.collaboratorByCoOwner!)).status).toBe(200);
    const statuses = (await owner.http.get(`${base}/invitations`)).body.invitations.map((i: { status: string }) => i.status).sort();
    expect(statuses).toEqual(['accepted', 'accepted', 'accepted', 'revoked', 'revoked']);
  });
});

describe('who may send invitation mails, and how many', () => {
  it('[ACC-2] an account whose e-mail address is not verified cannot invite (403 email_not_verified)', async () => {
    const owner = await signUp(ctx, { verify: false });
    const email = uniqueEmail('invitee');
    const refused = await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role: 'collaborator' });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('email_not_verified');
    expect(await ctx.core.mailer.list({ to: email })).toEqual([]);
    const verification = await mailedToken(ctx, owner.email, 'accounts.verify_email');
    expect((await owner.http.post('/api/v1/email-verifications', { token: verification })).status).toBe(200);
    expect((await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role: 'collaborator' })).status).toBe(201);
  });

  it(`[ACC-2] a customer sends at most ${MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR} invitations an hour (429 too_many_invitations)`, async () => {
    const owner = await signUp(ctx);
    const invite = (email: string) => owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role: 'collaborator' });
    const answers = await Promise.all(Array.from({ length: MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR + 5 }, () => invite(uniqueEmail('bulk'))));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR);
    const refused = answers.filter((a) => a.status === 429);
    expect(refused).toHaveLength(5);
    expect(refused[0]!.body.code).toBe('too_many_invitations');
    expect(Number(refused[0]!.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
    const mails = (await ctx.core.mailer.list({ limit: 1000 })).filter((m) => m.template === 'accounts.invitation' && m.to.startsWith('bulk-'));
    expect(mails).toHaveLength(MAX_INVITATIONS_PER_CUSTOMER_PER_HOUR);
    ctx.clock.advance(61 * 60_000);
    expect((await invite(uniqueEmail('later'))).status).toBe(201);
  });
});
