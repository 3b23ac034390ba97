import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { addMember as addMemberTo, mailedToken, signUp, TEST_PASSWORD, uniqueEmail, type SignedUp } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const addMember = (owner: SignedUp, role: 'owner' | 'administrator' | 'collaborator', email?: string) => addMemberTo(ctx, owner, role, email);

describe('invitations', () => {
  it('[ACC-2] an owner invites by e-mail; accepting creates a verified account with that role and a session; the token is one-time', async () => {
    const owner = await signUp(ctx);
    const email = uniqueEmail('invitee');
    const inv = await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role: 'collaborator' });
    expect(inv.status).toBe(201);
    expect(inv.body).toMatchObject({ email, role: 'collaborator', status: 'pending', customerId: owner.customerId });
    const [mail] = await ctx.core.mailer.list({ to: email });
    expect(mail).toMatchObject({ template: 'accounts.invitation', subject: 'Invitation to join Acme SAS' });
    const token = await mailedToken(ctx, email, 'accounts.invitation');

    const invitee = ctx.client();
    const missing = await invitee.post('/api/v1/invitations/accept', { token });
    expect(missing.body.code).toBe('name_and_password_required');
    const res = await invitee.post('/api/v1/invitations/accept', { token, name: 'Grace Hopper', password: TEST_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body.customer).toMatchObject({ id: owner.customerId, role: 'collaborator' });
    expect(res.body.user).toMatchObject({ email, emailVerified: true });
    expect((await invitee.get('/api/v1/me')).body.customers).toEqual([{ id: owner.customerId, name: 'Acme SAS', role: 'collaborator' }]);

    const members = await owner.http.get(`/api/v1/customers/${owner.customerId}/members`);
    expect(members.body.members.map((m: { email: string; role: string }) => [m.email, m.role])).toEqual([
      [owner.email, 'owner'],
      [email, 'collaborator'],
    ]);
    expect((await ctx.client().post('/api/v1/invitations/accept', { token, name: 'Again', password: TEST_PASSWORD })).status).toBe(400);
    const list = await owner.http.get(`/api/v1/customers/${owner.customerId}/invitations`);
    expect(list.body.invitations[0]).toMatchObject({ email, status: 'accepted' });
  });

  it('[ACC-2] an existing account joins only when signed in as that account', async () => {
    const owner = await signUp(ctx);
    const existing = await signUp(ctx);
    const stranger = await signUp(ctx);
    await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email: existing.email, role: 'administrator' });
    const token = await mailedToken(ctx, existing.email, 'accounts.invitation');
    const anonymous = await ctx.client().post('/api/v1/invitations/accept', { token, name: 'Hijack', password: 'hijacker password' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.code).toBe('sign_in_required');
    const wrong = await stranger.http.post('/api/v1/invitations/accept', { token });
    expect(wrong.status).toBe(403);
    expect(wrong.body.code).toBe('wrong_account');
    const ok = await existing.http.post('/api/v1/invitations/accept', { token });
    expect(ok.status).toBe(200);
    expect(ok.body.customer).toMatchObject({ id: owner.customerId, role: 'administrator' });
    expect((await existing.http.get('/api/v1/customers')).body.customers).toHaveLength(2);
    // Inviting a member again is refused.
    const dup = await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email: existing.email, role: 'collaborator' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('already_member');
  });

  it('[ACC-2] invitations expire and can be revoked', async () => {
    const owner = await signUp(ctx);
    const late = uniqueEmail('late');
    await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email: late, role: 'collaborator' });
    const lateToken = await mailedToken(ctx, late, 'accounts.invitation');
    const revokedEmail = uniqueEmail('revoked');
    const inv = await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email: revokedEmail, role: 'collaborator' });
    const revokedToken = await mailedToken(ctx, revokedEmail, 'accounts.invitation');
    expect((await owner.http.delete(`/api/v1/customers/${owner.customerId}/invitations/${inv.body.id}`)).status).toBe(204);
    expect((await ctx.client().post('/api/v1/invitations/accept', { token: revokedToken, name: 'R', password: TEST_PASSWORD })).status).toBe(400);
    ctx.clock.advance((ctx.core.config.auth.invitationTtlDays * 24 + 1) * 3_600_000);
    expect((await ctx.client().post('/api/v1/invitations/accept', { token: lateToken, name: 'L', password: TEST_PASSWORD })).status).toBe(400);
    const list = await owner.http.get(`/api/v1/customers/${owner.customerId}/invitations`);
    expect(list.body.invitations.map((i: { status: string }) => i.status).sort()).toEqual(['expired', 'revoked']);
  });
});

describe('roles', () => {
  it('[ACC-2] a collaborator cannot manage members, invitations or the company data', async () => {
    const owner = await signUp(ctx);
    const collaborator = await addMember(owner, 'collaborator');
    const admin = await addMember(owner, 'administrator');
    const c = collaborator.http;
    const base = `/api/v1/customers/${owner.customerId}`;
    expect((await c.get(`${base}/members`)).status).toBe(200);
    for (const res of [
      await c.patch(`${base}/members/${admin.userId}`, { role: 'collaborator' }),
      await c.delete(`${base}/members/${admin.userId}`),
      await c.post(`${base}/invitations`, { email: uniqueEmail(), role: 'collaborator' }),
      await c.get(`${base}/invitations`),
      await c.patch(base, { name: 'Taken over' }),
    ]) {
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('role_required');
    }
    expect((await owner.http.get(base)).body.name).toBe('Acme SAS');
    // A collaborator may leave on their own.
    expect((await c.delete(`${base}/members/${collaborator.userId}`)).status).toBe(204);
    expect((await c.get(base)).status).toBe(404);
  });

  it('[ACC-2] only an owner grants or removes the owner role, and a customer always keeps an owner (409 last_owner)', async () => {
    const owner = await signUp(ctx);
    const admin = await addMember(owner, 'administrator');
    const colleague = await addMember(owner, 'collaborator');
    const base = `/api/v1/customers/${owner.customerId}`;

    const grant = await admin.http.patch(`${base}/members/${colleague.userId}`, { role: 'owner' });
    expect(grant.status).toBe(403);
    expect(grant.body.code).toBe('owner_required');
    expect((await admin.http.patch(`${base}/members/${owner.userId}`, { role: 'collaborator' })).body.code).toBe('owner_required');
    expect((await admin.http.delete(`${base}/members/${owner.userId}`)).body.code).toBe('owner_required');
    expect((await admin.http.post(`${base}/invitations`, { email: uniqueEmail(), role: 'owner' })).body.code).toBe('owner_required');
    // An administrator manages collaborators.
    const promoted = await admin.http.patch(`${base}/members/${colleague.userId}`, { role: 'administrator' });
    expect(promoted.status).toBe(200);
    expect(promoted.body).toMatchObject({ userId: colleague.userId, role: 'administrator' });

    const last = await owner.http.patch(`${base}/members/${owner.userId}`, { role: 'administrator' });
    expect(last.status).toBe(409);
    expect(last.body.code).toBe('last_owner');
    expect((await owner.http.delete(`${base}/members/${owner.userId}`)).body.code).toBe('last_owner');

    expect((await owner.http.patch(`${base}/members/${admin.userId}`, { role: 'owner' })).status).toBe(200);
    expect((await owner.http.patch(`${base}/members/${owner.userId}`, { role: 'administrator' })).status).toBe(200);
    const roles = (await admin.http.get(`${base}/members`)).body.members.map((m: { userId: string; role: string }) => [m.userId, m.role]);
    expect(roles).toEqual([
      [owner.userId, 'administrator'],
      [admin.userId, 'owner'],
      [colleague.userId, 'administrator'],
    ]);
  });

  it('[SEC-4] role changes and removals land in the audit log', async () => {
    const owner = await signUp(ctx);
    const member = await addMember(owner, 'collaborator');
    const base = `/api/v1/customers/${owner.customerId}`;
    await owner.http.patch(`${base}/members/${member.userId}`, { role: 'administrator' });
    await owner.http.delete(`${base}/members/${member.userId}`);
    const entries = await ctx.core.db.selectFrom('audit_log').selectAll().where('customer_id', '=', owner.customerId).where('subject_id', '=', member.userId).orderBy('seq').execute();
    const changed = entries.find((e) => e.action === 'member.role_changed');
    expect(changed).toMatchObject({ actor_type: 'user', actor_id: owner.userId, data: { from: 'collaborator', to: 'administrator' } });
    expect(entries.map((e) => e.action)).toEqual(['member.joined', 'member.role_changed', 'member.removed']);
  });
});

describe('contacts', () => {
  it('[ACC-2] the customer records a designated contact (a member) and a data-protection contact', async () => {
    const owner = await signUp(ctx);
    const admin = await addMember(owner, 'administrator');
    const outsider = await signUp(ctx);
    const base = `/api/v1/customers/${owner.customerId}`;
    expect((await owner.http.get(base)).body).toMatchObject({ contactUserId: owner.userId, dataProtectionContact: null });

    const notMember = await owner.http.patch(base, { contactUserId: outsider.userId });
    expect(notMember.status).toBe(400);
    expect(notMember.body.code).toBe('contact_not_member');

    const res = await admin.http.patch(base, { contactUserId: admin.userId, dataProtectionContact: { name: 'Dana Privacy', email: 'DPO@acme.example' }, postalAddress: '2 quai de Seine, Paris', country: 'FR', name: 'Acme Group SAS' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ contactUserId: admin.userId, dataProtectionContact: { name: 'Dana Privacy', email: 'dpo@acme.example' }, postalAddress: '2 quai de Seine, Paris', country: 'FR', name: 'Acme Group SAS' });
    const members = (await owner.http.get(`${base}/members`)).body.members;
    expect(members.find((m: { isContact: boolean }) => m.isContact).userId).toBe(admin.userId);

    expect((await owner.http.patch(base, { dataProtectionContact: { name: 'X', email: 'not-an-email' } })).status).toBe(400);
    // When the designated contact leaves, an owner becomes the contact.
    expect((await owner.http.delete(`${base}/members/${admin.userId}`)).status).toBe(204);
    expect((await owner.http.get(base)).body.contactUserId).toBe(owner.userId);
  });
});

describe('isolation between customers', () => {
  it("a member of customer X gets 404 for customer Y's customer, member and invitation ids", async () => {
    const x = await signUp(ctx);
    const y = await signUp(ctx);
    const yMember = await addMember(y, 'collaborator');
    const yInvitation = (await y.http.post(`/api/v1/customers/${y.customerId}/invitations`, { email: uniqueEmail(), role: 'collaborator' })).body;
    const yBase = `/api/v1/customers/${y.customerId}`;
    const xBase = `/api/v1/customers/${x.customerId}`;
    const answers = [
      await x.http.get(yBase),
      await x.http.patch(yBase, { name: 'Mine now' }),
      await x.http.get(`${yBase}/members`),
      await x.http.patch(`${yBase}/members/${yMember.userId}`, { role: 'owner' }),
      await x.http.delete(`${yBase}/members/${yMember.userId}`),
      await x.http.get(`${yBase}/invitations`),
      await x.http.post(`${yBase}/invitations`, { email: uniqueEmail(), role: 'owner' }),
      await x.http.delete(`${yBase}/invitations/${yInvitation.id}`),
      // Y's ids under X's own customer path.
      await x.http.patch(`${xBase}/members/${yMember.userId}`, { role: 'owner' }),
      await x.http.delete(`${xBase}/members/${yMember.userId}`),
      await x.http.delete(`${xBase}/invitations/${yInvitation.id}`),
    ];
    for (const res of answers) expect(res.status).toBe(404);
    expect((await y.http.get(yBase)).body.name).toBe('Acme SAS');
    expect((await y.http.get(`${yBase}/invitations`)).body.invitations.find((i: { id: string }) => i.id === yInvitation.id).status).toBe('pending');
    expect((await y.http.get(`${yBase}/members`)).body.members).toHaveLength(2);
    expect((await x.http.get('/api/v1/customers')).body.customers.map((c: { id: string }) => c.id)).toEqual([x.customerId]);
  });
});
