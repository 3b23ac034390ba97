import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers } from '../../../test/factories.ts';
import { storageRoot } from '../../config/config.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { createSession } from '../accounts/authn.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';

const DAY_MS = 86_400_000;
let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
});
afterAll(async () => ctx?.close());

/** A fresh signed-in client for `userId` (sessions expire when the test clock moves by weeks). */
async function signIn(userId: string): Promise<HttpClient> {
  const session = await createSession(ctx.core.db, ctx.core.clock, { userId, ttlHours: 24, secondFactorPending: false, ip: null, userAgent: 'vitest' });
  const http = ctx.client();
  http.cookie = `havre_session=${session.token}`;
  http.csrfToken = session.csrfToken;
  return http;
}

/** Logs in as the tenant's own role with a real client; resolves to the error, or null when it connected. */
async function loginAsTenantRole(ws: Workspace): Promise<Error | null> {
  const target = await ctx.app.modules.fleet.connections.target(ws.tenantDatabaseId);
  const client = new pg.Client(target);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return null;
  } catch (err) {
    return err as Error;
  } finally {
    await client.end().catch(() => {});
  }
}

async function databaseExists(name: string): Promise<boolean> {
  const admin = new pg.Client({ connectionString: ctx.regionServers.find((s) => s.region === 'fr')!.adminUrl });
  await admin.connect();
  try {
    return (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1;
  } finally {
    await admin.end();
  }
}

describe('cancel and reactivate', () => {
  it('[TEN-4] a cancelled tenant is closed at once (API state, role cannot log in), still exportable, and the owner reactivates it within the grace period', async () => {
    const ws = await createWorkspace(ctx);
    await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Acme' });
    const collaborator = await addMember(ctx, ws, 'collaborator');
    expect((await collaborator.http.delete(`/api/v1/tenants/${ws.tenantId}`)).status).toBe(403);
    const stranger = await createMember(ctx);
    expect((await stranger.http.delete(`/api/v1/tenants/${ws.tenantId}`)).status).toBe(404);

    const res = await ws.owner.http.delete(`/api/v1/tenants/${ws.tenantId}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ state: 'pending', cause: 'customer', destroyAfter: new Date(ctx.clock.now().getTime() + 28 * DAY_MS).toISOString() });

    // The API answers with the clear state; the tenant role may not connect (a real login).
    const api = await ws.owner.http.get(`${ws.base}/companies`);
    expect(api.status).toBe(409);
    expect(api.body.code).toBe('tenant_cancelled');
    expect((await loginAsTenantRole(ws))?.message).toMatch(/not permitted to log in/);
    await expect(tenantQuery(ctx, ws, 'SELECT 1')).rejects.toThrow();
    // The export path (admin connection + SET ROLE) still reads the data.
    const names = await ctx.app.modules.fleet.connections.withTenantAsAdmin(ws.tenantDatabaseId, async (c) => (await c.query('SELECT name FROM companies')).rows.map((r) => r.name));
    expect(names).toEqual(['Acme']);
    // Recorded as a transition.
    const transitions = (await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/transitions`)).body.transitions;
    expect(transitions.at(-1)).toMatchObject({ to: 'cancelled', actorType: 'user' });
    // No certificate before destruction; no scheduled backup while cancelled.
    expect((await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body.code).toBe('tenant_not_destroyed');
    expect(await ctx.app.modules.backups.service.dueTenants(ctx.clock.now())).not.toContain(ws.tenantId);

    // Reactivation: owner only, within the grace period.
    ctx.clock.advance(20 * DAY_MS);
    const admin = await addMember(ctx, ws, 'administrator');
    expect((await admin.http.post(`/api/v1/tenants/${ws.tenantId}/reactivate`)).status).toBe(403);
    const owner = await signIn(ws.owner.userId);
    const back = await owner.post(`/api/v1/tenants/${ws.tenantId}/reactivate`);
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(back.body.state).toBe('reactivated');
    expect(await loginAsTenantRole(ws)).toBeNull();
    expect((await owner.get(`${ws.base}/companies`)).status).toBe(200);
    // The grace period has no effect any more: a later pass destroys nothing.
    ctx.clock.advance(30 * DAY_MS);
    await ctx.app.modules.deletion.run();
    expect((await ctx.app.modules.tenants.service.get(ws.tenantId)).state).toBe('active');
  });

  it('[TEN-3] after the grace period the tenant cannot be reactivated: it is destroyed (database, role, files)', async () => {
    const ws = await createWorkspace(ctx);
    const files = createFsStorage(storageRoot(ctx.core.config));
    await files.put(`tenants/${ws.tenantDatabaseId}/attachments/${crypto.randomUUID()}`, (async function* () {
      yield Buffer.from('hello world');
    })());
    // Staff cancel with a reason (e.g. a contract ending).
    const staff = await createStaff(ctx, 'billing');
    expect((await staff.http.post(`/api/v1/admin/tenants/${ws.tenantId}/cancel`, { reason: 'contract ended' })).body.cause).toBe('staff');
    const database = (await ctx.app.modules.fleet.databases.get(ws.tenantDatabaseId))!;

    ctx.clock.advance(27 * DAY_MS);
    await ctx.app.modules.deletion.run();
    expect((await ctx.app.modules.tenants.service.get(ws.tenantId)).state).toBe('cancelled');
    ctx.clock.advance(1 * DAY_MS + 1000);
    const owner = await signIn(ws.owner.userId);
    const report = await ctx.app.modules.deletion.run();
    expect(report.destroyed).toBeGreaterThanOrEqual(1);
    expect((await owner.post(`/api/v1/tenants/${ws.tenantId}/reactivate`)).body.code).toBe('tenant_not_cancelled');
    expect((await owner.get(`${ws.base}/companies`)).status).toBe(410);
    expect(await databaseExists(database.databaseName)).toBe(false);
    const files$ = [];
    for await (const f of files.list(`tenants/${ws.tenantDatabaseId}`)) files$.push(f);
    expect(files$).toEqual([]);
    const cert = (await owner.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body;
    expect(cert).toMatchObject({ state: 'destroyed', rule: 'grace_period_expired', cancellation: { cause: 'staff', reason: 'contract ended' }, destroyed: { database: database.databaseName, role: database.roleName, attachments: { count: 1, bytes: 11 } } });
    const audit = await ctx.core.db.selectFrom('audit_log').select('action').where('subject_id', '=', ws.tenantId).execute();
    expect(audit.map((a) => a.action)).toContain('tenant.destroyed');
  });
});

describe('immediate destruction', () => {
  it('[TEN-4] needs the owner and the exact typed name; then everything is gone at once', async () => {
    const ws = await createWorkspace(ctx, { name: 'Ma Société' });
    const admin = await addMember(ctx, ws, 'administrator');
    expect((await admin.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'Ma Société' })).status).toBe(403);
    for (const confirm of ['ma société', 'Ma Société ', 'Ma Societe', '']) {
      const res = await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('confirmation_mismatch');
    }
    expect((await ctx.app.modules.tenants.service.get(ws.tenantId)).state).toBe('trial');
    const database = (await ctx.app.modules.fleet.databases.get(ws.tenantDatabaseId))!;
    // An export archive made earlier goes with the tenant.
    const exportDir = path.join(ctx.core.config.home, 'exports', ws.tenantId);
    await mkdir(exportDir, { recursive: true });
    await writeFile(path.join(exportDir, 'earlier.zip'), 'PK');
    const res = await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'Ma Société' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ state: 'destroyed', rule: 'customer_request' });
    expect(await databaseExists(database.databaseName)).toBe(false);
    expect(existsSync(exportDir)).toBe(false);
    expect((await ws.owner.http.get(`${ws.base}/companies`)).status).toBe(410);
    expect((await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'Ma Société' })).body.code).toBe('tenant_destroyed');
    const states = (await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/transitions`)).body.transitions.map((t: { to: string }) => t.to);
    expect(states.slice(-2)).toEqual(['cancelled', 'destroyed']);
  });

  it('[TEN-4] a crash between destruction steps is completed by the next run', async () => {
    const ws = await createWorkspace(ctx, { name: 'Crashy' });
    const database = (await ctx.app.modules.fleet.databases.get(ws.tenantDatabaseId))!;
    const { databases } = ctx.app.modules.fleet;
    const realDrop = databases.drop.bind(databases);
    // The database is dropped, then the process "dies" before recording it.
    const spy = vi.spyOn(databases, 'drop').mockImplementationOnce(async (id) => {
      await realDrop(id);
      throw new Error('simulated crash after the drop');
    });
    const res = await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'Crashy' });
    expect(res.body.state).toBe('destroying');
    spy.mockRestore();
    expect((await ws.owner.http.get(`${ws.base}/companies`)).status).toBe(410);
    expect((await ctx.app.modules.deletion.service.find(ws.tenantId))!.last_error).toMatch(/simulated crash/);
    expect((await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).body.state).toBe('destroying');

    const report = await ctx.app.modules.deletion.run();
    expect(report.destroyed).toBe(1);
    const row = (await ctx.app.modules.deletion.service.find(ws.tenantId))!;
    expect(row).toMatchObject({ state: 'destroyed', last_error: null });
    expect(row.database_dropped_at).not.toBeNull();
    expect(await databaseExists(database.databaseName)).toBe(false);
    // Idempotent: another run changes nothing.
    expect((await ctx.app.modules.deletion.run()).destroyed).toBe(0);
  });
});

describe('deletion certificate', () => {
  it('[TEN-5] says what was destroyed, when, by which rule and when the last backup goes, in English and French, JSON, text and HTML', async () => {
    const ws = await createWorkspace(ctx, { name: 'Certified <b>' });
    const destroyed = await ws.owner.http.post(`/api/v1/tenants/${ws.tenantId}/destroy`, { confirm: 'Certified <b>' });
    expect(destroyed.status).toBe(200);
    const now = ctx.clock.now();
    const json = await ws.owner.http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`);
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({
      certificate: 'havre-deletion-certificate/1',
      tenant: { id: ws.tenantId, name: 'Certified <b>', customerId: ws.owner.customerId },
      state: 'destroyed',
      rule: 'customer_request',
      destroyedAt: now.toISOString(),
      destroyed: { attachments: { count: 0, bytes: 0 } },
      backups: { remaining: 0, keyShreddedBy: new Date(new Date(now).setUTCFullYear(now.getUTCFullYear() + 1)).toISOString() },
    });
    expect(json.body.destroyed.database).toMatch(/^t_[0-9a-f]{24}$/);

    const en = await ws.owner.http.request('GET', `/api/v1/tenants/${ws.tenantId}/deletion-certificate?format=text`, { headers: { 'accept-language': 'en-GB,en' } });
    expect(en.headers.get('content-type')).toMatch(/text\/plain/);
    expect(en.body).toContain('Deletion certificate');
    expect(en.body).toContain('immediate destruction asked by the customer');
    expect(en.body).toContain('Last backup copy gone by');
    const fr = await ws.owner.http.request('GET', `/api/v1/tenants/${ws.tenantId}/deletion-certificate?format=text`, { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } });
    expect(fr.body).toContain('Certificat de suppression');
    expect(fr.body).toContain('destruction immédiate demandée par le client');
    expect(fr.body).toContain('Dernière copie de sauvegarde disparue au plus tard le');
    const html = await ws.owner.http.request('GET', `/api/v1/tenants/${ws.tenantId}/deletion-certificate?format=html&lang=fr`);
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(html.body).toContain('<html lang="fr">');
    expect(html.body).toContain('Certified &lt;b&gt;');
    expect(html.body).not.toContain('Certified <b>');

    // Owner or administrator of the customer; a collaborator 403, a stranger 404; staff keep it for the records.
    expect((await (await addMember(ctx, ws, 'administrator')).http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).status).toBe(200);
    expect((await (await addMember(ctx, ws, 'collaborator')).http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).status).toBe(403);
    expect((await (await createMember(ctx)).http.get(`/api/v1/tenants/${ws.tenantId}/deletion-certificate`)).status).toBe(404);
    const staff = await createStaff(ctx, 'support');
    expect((await staff.http.get(`/api/v1/admin/tenants/${ws.tenantId}/deletion-certificate`)).body.tenant.id).toBe(ws.tenantId);
  });
});
