import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createSession } from '../accounts/authn.ts';
import { escrowKey } from '../backups/backup-keys.ts';
import { createRecord, createWorkspace } from '../workspace/workspace-fixtures.ts';

const DAY_MS = 86_400_000;
let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
});
afterAll(async () => ctx?.close());

async function signIn(userId: string): Promise<HttpClient> {
  const session = await createSession(ctx.core.db, ctx.core.clock, { userId, ttlHours: 24, secondFactorPending: false, ip: null, userAgent: 'vitest' });
  const http = ctx.client();
  http.cookie = `havre_session=${session.token}`;
  http.csrfToken = session.csrfToken;
  return http;
}

/** Every object key under `backups/<tenantId>/` in every location. */
async function backupObjects(tenantId: string): Promise<string[]> {
  const keys: string[] = [];
  for (const store of ctx.app.modules.backups.stores) for await (const obj of store.list(`backups/${tenantId}/`)) keys.push(`${store.name}:${obj.key}`);
  return keys;
}

describe('a simulated 13 months after a cancellation', () => {
  it('[BKP-7] the cancelled tenant is destroyed after 28 days, its backups unreadable at 12 months and gone after their locks', async () => {
    const { backups, deletion } = ctx.app.modules;
    const ws = await createWorkspace(ctx, { name: 'Thirteen months' });
    await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Acme' });
    const backup = await backups.service.take(ws.tenantId, { trigger: 'on_demand', actor: { type: 'system' } });
    expect(backup.state).toBe('complete');
    expect((await backupObjects(ws.tenantId)).length).toBe(6); // 3 parts × 2 locations

    // Locks longer than the 12 months (as a bucket's default retention could impose): the key's
    // destruction must make the copies unreadable while the objects themselves cannot be deleted.
    const start = ctx.clock.now();
    const lockedUntil = new Date(start.getTime() + (28 + 365 + 30) * DAY_MS);
    for (const store of backups.stores) for await (const obj of store.list(`backups/${ws.tenantId}/`)) await store.extendRetention(obj.key, lockedUntil);
    await backups.repo.extendRetainUntil(backup.id, lockedUntil);

    expect((await ws.owner.http.delete(`/api/v1/tenants/${ws.tenantId}`)).status).toBe(200);

    // Day 27: still in its grace period. Day 28: destroyed.
    ctx.clock.advance(27 * DAY_MS);
    await deletion.run();
    expect((await ctx.app.modules.tenants.service.get(ws.tenantId)).state).toBe('cancelled');
    ctx.clock.advance(DAY_MS + 60_000);
    expect((await deletion.run()).destroyed).toBe(1);
    const destroyedAt = ctx.clock.now();
    expect((await ctx.app.modules.tenants.service.get(ws.tenantId)).state).toBe('destroyed');
    expect(await backups.service.dueTenants(destroyedAt)).not.toContain(ws.tenantId);

    let owner = await signIn(ws.owner.userId);
    let cert = (await owner.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body;
    const purgeAt = new Date(new Date(destroyedAt).setUTCFullYear(destroyedAt.getUTCFullYear() + 1));
    expect(cert).toMatchObject({ rule: 'grace_period_expired', backups: { remaining: 1, keyShreddedBy: purgeAt.toISOString(), keyShreddedAt: null, objectsDeletedAt: null, lastCopyGoneBy: purgeAt.toISOString() } });

    // Monthly passes up to the day before the 12 months: the backups stay readable.
    while (ctx.clock.now().getTime() + 30 * DAY_MS < purgeAt.getTime()) {
      ctx.clock.advance(30 * DAY_MS);
      await deletion.run();
    }
    ctx.clock.set(new Date(purgeAt.getTime() - DAY_MS));
    expect((await deletion.run()).keysShredded).toBe(0);
    expect((await backups.service.reader.keyById(backup.key_id)).length).toBe(32);

    // 12 months: the key is shredded — control plane and every escrow copy — while the objects stay (locked).
    ctx.clock.set(purgeAt);
    expect((await deletion.run()).keysShredded).toBe(1);
    const key = await ctx.core.db.selectFrom('backup_keys').selectAll().where('tenant_id', '=', ws.tenantId).executeTakeFirstOrThrow();
    expect(key).toMatchObject({ wrapped_key: null, shredded_at: purgeAt });
    for (const store of backups.stores) expect(await store.getMutable(escrowKey(ws.tenantId))).toBeUndefined();
    expect((await backupObjects(ws.tenantId)).length).toBe(6);
    await expect(backups.service.reader.keyById(backup.key_id)).rejects.toMatchObject({ code: 'backup_key_destroyed' });
    const verification = await backups.service.verify((await backups.repo.get(backup.id))!);
    expect(verification.ok).toBe(false);
    expect(verification.problems.length).toBeGreaterThan(0);
    // The verifier no longer picks backups whose key is gone.
    expect(await backups.service.verifyNext()).toBe(false);
    owner = await signIn(ws.owner.userId);
    cert = (await owner.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body;
    expect(cert.backups).toMatchObject({ remaining: 1, keyShreddedAt: purgeAt.toISOString(), objectsDeletedAt: null });

    // Daily retries while the lock holds; the objects go as soon as it passes.
    ctx.clock.advance(DAY_MS);
    expect((await deletion.run()).backupObjectsDeleted).toBe(0);
    ctx.clock.set(new Date(lockedUntil.getTime() + DAY_MS));
    expect((await deletion.run()).backupObjectsDeleted).toBe(6);
    expect(await backupObjects(ws.tenantId)).toEqual([]);
    expect((await backups.repo.get(backup.id))!.state).toBe('pruned');
    expect(ctx.clock.now().getTime() - start.getTime()).toBeGreaterThan(395 * DAY_MS); // about 13 months

    owner = await signIn(ws.owner.userId);
    cert = (await owner.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body;
    expect(cert.backups).toMatchObject({ remaining: 0, objectsDeletedAt: ctx.clock.now().toISOString(), lastCopyGoneBy: ctx.clock.now().toISOString() });
    const actions = (await ctx.core.db.selectFrom('audit_log').select('action').where('subject_id', '=', ws.tenantId).orderBy('seq').execute()).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(['tenant.destroyed', 'backup.key_shredded', 'backup.objects_deleted']));
    // Nothing left to do.
    ctx.clock.advance(2 * DAY_MS);
    expect(await deletion.run()).toMatchObject({ keysShredded: 0, backupObjectsDeleted: 0 });
  });

  it('[BKP-7] a destroyed tenant with no backup left has its key shredded at once', async () => {
    const ws = await createWorkspace(ctx, { name: 'No backups' });
    await ctx.app.modules.backups.keys.ensure(ws.tenantId); // a key exists, no backup
    expect((await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'No backups' })).status).toBe(200);
    expect((await ctx.app.modules.deletion.run()).keysShredded).toBe(1);
    const row = (await ctx.app.modules.deletion.service.find(ws.tenantId))!;
    expect(row.key_shredded_at).not.toBeNull();
    expect(row.backups_deleted_at).not.toBeNull();
    for (const store of ctx.app.modules.backups.stores) expect(await store.getMutable(escrowKey(ws.tenantId))).toBeUndefined();
  });
});
