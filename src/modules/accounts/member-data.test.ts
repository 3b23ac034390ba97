/**
 * ACC-4 (a member downloads everything Havre holds about them) and ACC-5 (account deletion on
 * request, with what must be refused first).
 */
import { sql } from 'kysely';
import { randomUUID } from 'node:crypto';
import yauzl from 'yauzl';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { addMember, signIn, signUp, TEST_PASSWORD } from './accounts-fixtures.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

/** The entries of a zip, by name, as text. */
function unzip(buffer: Buffer): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buffer, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err ?? new Error('no zip'));
      const out: Record<string, string> = {};
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error('no stream'));
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out[entry.fileName] = Buffer.concat(chunks).toString('utf8');
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

async function insertTenant(customerId: string, state: 'provisioning' | 'destroyed'): Promise<string> {
  const now = ctx.core.clock.now();
  const id = randomUUID();
  await ctx.core.db.insertInto('tenants').values({ id, customer_id: customerId, name: 'Shop', region: 'fr', state, tenant_database_id: null, plan: null, trial_ends_at: null, idempotency_key: null, idempotency_fingerprint: null, created_at: now, updated_at: now, state_changed_at: now }).execute();
  return id;
}

describe('my personal data', () => {
  it('[ACC-4] GET /api/v1/me/data-export returns profile, memberships, sessions, tokens, audit entries and mails about me as JSON — never a hash or secret', async () => {
    const owner = await signUp(ctx);
    const token = await owner.http.post('/api/v1/tokens', { name: 'CI token' });
    expect(token.status).toBe(201);
    const res = await owner.http.get('/api/v1/me/data-export');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toMatch(/attachment; filename="havre-my-data-\d{4}-\d{2}-\d{2}\.json"/);
    const data = res.body;
    expect(data.profile).toEqual([expect.objectContaining({ id: owner.userId, email: owner.email, name: 'Ada Owner', totpEnabled: false })]);
    expect(data.memberships).toEqual([expect.objectContaining({ customerId: owner.customerId, customerName: 'Acme SAS', role: 'owner' })]);
    expect(data.sessions.length).toBeGreaterThanOrEqual(1);
    expect(data.sessions[0]).toEqual({ createdAt: expect.any(String), lastSeenAt: expect.any(String), expiresAt: expect.any(String), revokedAt: null, ip: '127.0.0.1', userAgent: expect.any(String) });
    expect(data.apiTokens).toEqual([expect.objectContaining({ name: 'CI token', prefix: token.body.prefix, revokedAt: null })]);
    expect(data.auditEntries.map((a: { action: string }) => a.action)).toEqual(expect.arrayContaining(['account.signed_up', 'account.email_verified', 'api_token.created']));
    // The IP addresses the audit log keeps beside its chain come back in the member's copy.
    expect(data.auditEntries.some((a: { ip: string | null }) => a.ip === '127.0.0.1')).toBe(true);
    expect(data.mails).toEqual([expect.objectContaining({ to: owner.email, template: 'accounts.verify_email', subject: expect.any(String), text: expect.stringContaining('Ada Owner') })]);

    const text = JSON.stringify(data);
    const user = await ctx.core.db.selectFrom('users').select('password_hash').where('id', '=', owner.userId).executeTakeFirstOrThrow();
    const secrets = [user.password_hash, token.body.token, ...(await ctx.core.db.selectFrom('sessions').select('id').where('user_id', '=', owner.userId).execute()).map((s) => s.id), ...(await ctx.core.db.selectFrom('api_tokens').select('token_hash').where('user_id', '=', owner.userId).execute()).map((t) => t.token_hash)];
    for (const secret of secrets) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/password_hash|token_hash|totp_secret/);

    // An API token works too; the export is audited (ids only).
    expect((await ctx.client().get('/api/v1/me/data-export', { token: token.body.token })).status).toBe(200);
    const audit = await ctx.core.db.selectFrom('audit_log').select(['actor_id', 'data']).where('action', '=', 'account.data_exported').where('subject_id', '=', owner.userId).execute();
    expect(audit).toHaveLength(2);
    expect(await ctx.client().get('/api/v1/me/data-export').then((r) => r.status)).toBe(401);
  });

  it('[ACC-4] ?format=csv gives one CSV per section (RFC 4180, header row), alone or all in a zip with export.json', async () => {
    const owner = await signUp(ctx, { body: { name: '=HYPERLINK("x"), "quoted"' } });
    const one = await owner.http.get('/api/v1/me/data-export?format=csv&section=profile');
    expect(one.status).toBe(200);
    expect(one.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const lines = (one.body as string).split('\r\n');
    expect(lines[0]).toBe('id,email,name,phone,locale,emailVerifiedAt,staffRole,totpEnabled,createdAt,updatedAt');
    // Quoted because of the comma and quotes; a formula is defused with an apostrophe.
    expect(lines[1]).toContain(`"'=HYPERLINK(""x""), ""quoted"""`);
    expect(lines[2]).toBe('');
    expect((await owner.http.get('/api/v1/me/data-export?format=csv&section=passwords')).status).toBe(400);

    const res = await fetch(`${ctx.baseUrl}/api/v1/me/data-export?format=csv`, { headers: { cookie: owner.http.cookie! } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/zip');
    const files = await unzip(Buffer.from(await res.arrayBuffer()));
    expect(Object.keys(files).sort()).toEqual(['api-tokens.csv', 'audit-entries.csv', 'export.json', 'invitations.csv', 'mails.csv', 'memberships.csv', 'profile.csv', 'sessions.csv', 'sign-in-failures.csv']);
    expect(files['memberships.csv']).toMatch(/^customerId,customerName,role,since\r\n[0-9a-f-]{36},Acme SAS,owner,/);
    expect(files['api-tokens.csv']).toBe('id,name,prefix,createdAt,lastUsedAt,expiresAt,revokedAt\r\n');
    expect(JSON.parse(files['export.json']!).userId).toBe(owner.userId);
  });

  it('[ACC-5] deletion needs the password typed again, from a session; the sole owner of a customer with a live tenant must cancel or hand over first (409)', async () => {
    const owner = await signUp(ctx);
    expect((await owner.http.post('/api/v1/me/deletion-request', { password: 'not my password at all' })).body.code).toBe('wrong_password');
    const token = (await owner.http.post('/api/v1/tokens', { name: 'script' })).body.token as string;
    expect((await ctx.client().post('/api/v1/me/deletion-request', { password: TEST_PASSWORD }, { token })).body.code).toBe('session_required');

    const tenantId = await insertTenant(owner.customerId, 'provisioning');
    const blocked = await owner.http.post('/api/v1/me/deletion-request', { password: TEST_PASSWORD });
    expect(blocked.status).toBe(409);
    expect(blocked.body).toMatchObject({ code: 'live_tenants', customerIds: [owner.customerId] });

    // With another owner, the customer and its tenant live on without them — but first, the collaborator case:
    const collaborator = await addMember(ctx, owner, 'collaborator');
    await ctx.core.db.updateTable('tenants').set({ state: 'destroyed' }).where('id', '=', tenantId).execute();
    const handover = await owner.http.post('/api/v1/me/deletion-request', { password: TEST_PASSWORD });
    expect(handover.status).toBe(409);
    expect(handover.body.code).toBe('ownership_handover_required');
    // A collaborator leaves freely.
    expect((await collaborator.http.post('/api/v1/me/deletion-request', { password: TEST_PASSWORD })).status).toBe(204);
    expect(await ctx.core.db.selectFrom('users').select('deleted_at').where('id', '=', owner.userId).executeTakeFirstOrThrow()).toEqual({ deleted_at: null });
  });

  it('[ACC-5] deleting my account erases my personal data, revokes sessions and tokens, removes memberships; the audit log keeps ids only and is not altered; leftovers go after 30 days', async () => {
    const owner = await signUp(ctx);
    const second = await addMember(ctx, owner, 'owner');
    await insertTenant(owner.customerId, 'provisioning'); // live, but another owner remains
    await ctx.core.db.updateTable('users').set({ phone: '+33 6 12 34 56 78' }).where('id', '=', second.userId).execute();
    const token = (await second.http.post('/api/v1/tokens', { name: 'script' })).body.token as string;
    const auditBefore = await ctx.core.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    // The audit log holds the member's IP addresses (sign-up, sign-in, token) beside its chain.
    const personalAbout = () => ctx.core.db.selectFrom('audit_personal').select('seq').where((eb) => eb.or([eb('person_id', '=', second.userId), eb(sql`lower(data ->> 'email')`, '=', second.email.toLowerCase())])).execute();
    expect((await personalAbout()).length).toBeGreaterThan(0);

    const res = await second.http.post('/api/v1/me/deletion-request', { password: TEST_PASSWORD });
    expect(res.status).toBe(204);
    // Their IP and e-mail addresses in the audit log are erased at once (a later failed sign-in
    // with the old address is new data, under its own rule); the chain still verifies (below).
    const erasedAtOnce = await personalAbout();

    const user = await ctx.core.db.selectFrom('users').selectAll().where('id', '=', second.userId).executeTakeFirstOrThrow();
    expect(user).toMatchObject({ name: 'Deleted user', email: `deleted-${second.userId}@invalid`, phone: null, totp_secret_sealed: null, totp_enabled_at: null, email_verified_at: null });
    expect(user.deleted_at).not.toBeNull();
    expect(user.password_hash).not.toMatch(/^\$argon2/);
    expect(await ctx.core.db.selectFrom('memberships').select('customer_id').where('user_id', '=', second.userId).execute()).toEqual([]);
    expect(await ctx.core.db.selectFrom('sessions').select('id').where('user_id', '=', second.userId).where('revoked_at', 'is', null).execute()).toEqual([]);
    expect(await ctx.core.db.selectFrom('mail_outbox').select('id').where('to_address', '=', second.email).execute()).toEqual([]);
    expect(await ctx.core.db.selectFrom('invitations').select('id').where('email', '=', second.email).execute()).toEqual([]);
    // Signed out everywhere, and the old credentials open nothing.
    expect((await second.http.get('/api/v1/me')).status).toBe(401);
    expect((await ctx.client().get('/api/v1/me', { token })).status).toBe(401);
    await expect(signIn(ctx, second.email)).rejects.toThrow(/401/);

    // The audit log is append-only: earlier entries are unchanged; the new entry names ids only.
    const auditAfter = await ctx.core.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    expect(auditAfter.slice(0, auditBefore.length)).toEqual(auditBefore);
    const entry = auditAfter.find((a) => a.action === 'account.deleted' && a.subject_id === second.userId)!;
    expect(entry).toMatchObject({ actor_id: second.userId, subject_id: second.userId, data: { customersLeft: 1, sessionsRevoked: 1, tokensRevoked: 1 } });
    expect(JSON.stringify(entry)).not.toContain(second.email);
    expect(erasedAtOnce).toEqual([]);
    expect(entry.data).toMatchObject({ auditPersonalErased: expect.any(Number) });
    expect(entry.ip).toBeNull();
    expect((await ctx.core.audit.verify()).ok).toBe(true);
    // The remaining owner still sees the customer; the deleted member is gone from it.
    const members = await owner.http.get(`/api/v1/customers/${owner.customerId}/members`);
    expect(members.body.members.map((m: { userId: string }) => m.userId)).toEqual([owner.userId]);

    // PRV-4: the revoked session and token rows of the deleted account go 30 days later.
    ctx.clock.advance(31 * 86_400_000);
    await ctx.app.modules.retention.run(ctx.core.clock.now(), { only: ['deleted_user_leftovers'] });
    expect(await ctx.core.db.selectFrom('sessions').select('id').where('user_id', '=', second.userId).execute()).toEqual([]);
    expect(await ctx.core.db.selectFrom('api_tokens').select('id').where('user_id', '=', second.userId).execute()).toEqual([]);
  });
});
