/**
 * The workspace path: roles (APP-3), isolation between customers (TEN-1), tenant states, and the
 * hot-path auth cache (exact on this node, bounded staleness across nodes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, createCore } from '../../app.ts';
import { createTestContext, makeClient, type TestContext } from '../../../test/context.ts';
import { createMember, registerServers } from '../../../test/factories.ts';
import { addMember, createRecord, createWorkspace, type Workspace } from './workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;
let other: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
  other = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

describe('workspace roles', () => {
  it('[APP-3] a collaborator creates, edits and deletes every kind of record', async () => {
    const collaborator = await addMember(ctx, ws, 'collaborator');
    const http = collaborator.http;
    const company = await createRecord(http, `${ws.base}/companies`, { name: 'Collab SAS' });
    const contact = await createRecord(http, `${ws.base}/contacts`, { companyId: company.id, lastName: 'Roux' });
    const employee = await createRecord(http, `${ws.base}/employees`, { firstName: 'Léa', lastName: 'Petit' });
    const invoice = await createRecord(http, `${ws.base}/invoices`, { companyId: company.id, number: 'C-1', issueDate: '2026-11-01', amountCents: 5_000 });
    const payment = await createRecord(http, `${ws.base}/invoices/${invoice.id}/payments`, { paidOn: '2026-11-02', amountCents: 1_000 });
    const note = await createRecord(http, `${ws.base}/notes`, { invoiceId: invoice.id, body: 'Acompte reçu.' });
    for (const [path, change] of [
      [`companies/${company.id}`, { city: 'Brest' }],
      [`contacts/${contact.id}`, { position: 'Gérant' }],
      [`employees/${employee.id}`, { jobTitle: 'Comptable' }],
      [`invoices/${invoice.id}`, { amountCents: 6_000 }],
      [`notes/${note.id}`, { body: 'Acompte reçu le 2.' }],
    ] as const) {
      const res = await http.patch(`${ws.base}/${path}`, change);
      expect(res.status, path).toBe(200);
      expect(res.body).toMatchObject(change);
    }
    for (const path of [`notes/${note.id}`, `invoices/${invoice.id}/payments/${payment.id}`, `invoices/${invoice.id}`, `contacts/${contact.id}`, `employees/${employee.id}`, `companies/${company.id}`]) {
      expect((await http.delete(`${ws.base}/${path}`)).status, path).toBe(204);
      expect((await http.get(`${ws.base}/${path}`)).status, path).toBe(404);
    }
  });

  it('[APP-3] only administrators and owners change the workspace settings; every member reads them', async () => {
    const collaborator = await addMember(ctx, ws, 'collaborator');
    const administrator = await addMember(ctx, ws, 'administrator');
    expect((await collaborator.http.get(`${ws.base}/settings`)).body).toMatchObject({ defaultCurrency: 'EUR', paymentTermsDays: 30 });
    const refused = await collaborator.http.patch(`${ws.base}/settings`, { paymentTermsDays: 45 });
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('role_required');
    expect((await collaborator.http.get(`${ws.base}/settings`)).body.paymentTermsDays).toBe(30);
    expect((await administrator.http.patch(`${ws.base}/settings`, { paymentTermsDays: 45 })).body.paymentTermsDays).toBe(45);
    expect((await ws.owner.http.patch(`${ws.base}/settings`, { reminderLocale: 'en', paymentTermsDays: 30 })).body).toMatchObject({ reminderLocale: 'en', paymentTermsDays: 30 });
  });
});

describe('workspace isolation and states', () => {
  it('[TEN-1] a member of another customer gets 404 for the tenant, and a record id of one tenant is unknown in another', async () => {
    const company = await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Secret SA' });
    const stranger = other.owner.http;
    for (const path of ['companies', `companies/${company.id}`, 'settings']) {
      const res = await stranger.get(`${ws.base}/${path}`);
      expect(res.status, path).toBe(404);
      expect(res.body.code).toBe('tenant_not_found');
    }
    expect((await stranger.patch(`${ws.base}/companies/${company.id}`, { name: 'Pwned' })).status).toBe(404);
    // Their own tenant does not know the id: it lives in another database.
    const res = await stranger.get(`${other.base}/companies/${company.id}`);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('company_not_found');
    expect((await ws.owner.http.get(`${ws.base}/companies/${company.id}`)).body.name).toBe('Secret SA');
  });

  it('a suspended tenant answers 423 and a cancelled one 409 until resumed; nothing is served meanwhile', async () => {
    const t = await createWorkspace(ctx);
    await createRecord(t.owner.http, `${t.base}/companies`, { name: 'Before' });
    const tenants = ctx.app.modules.tenants.service;
    await tenants.suspend(t.tenantId, { actor: { type: 'cli' }, reason: 'unpaid' });
    const suspended = await t.owner.http.get(`${t.base}/companies`);
    expect(suspended.status).toBe(423);
    expect(suspended.body.code).toBe('tenant_suspended');
    expect((await t.owner.http.post(`${t.base}/companies`, { name: 'During' })).status).toBe(423);
    await tenants.transition(t.tenantId, 'cancelled', { actor: { type: 'cli' } });
    expect((await t.owner.http.get(`${t.base}/companies`)).body.code).toBe('tenant_cancelled');
    await tenants.resume(t.tenantId, { actor: { type: 'cli' } });
    const back = await t.owner.http.get(`${t.base}/companies`);
    expect(back.status).toBe(200);
    expect(back.body.items.map((c: any) => c.name)).toEqual(['Before']);
  });
});

describe('auth cache', () => {
  it('on this node, a revoked token, a removed member and a suspension take effect on the very next request', async () => {
    const t = await createWorkspace(ctx);
    const member = await addMember(ctx, t, 'collaborator');
    const token = await t.owner.http.post('/api/v1/tokens', { name: 'script' });
    expect(token.status).toBe(201);
    const bearer = { token: token.body.token as string };
    const api = ctx.client();
    expect((await api.get(`${t.base}/companies`, bearer)).status).toBe(200);
    expect((await member.http.get(`${t.base}/companies`)).status).toBe(200);

    expect((await t.owner.http.delete(`/api/v1/tokens/${token.body.id}`)).status).toBe(204);
    expect((await api.get(`${t.base}/companies`, bearer)).status).toBe(401);

    expect((await t.owner.http.delete(`/api/v1/customers/${t.owner.customerId}/members/${member.userId}`)).status).toBe(204);
    expect((await member.http.get(`${t.base}/companies`)).status).toBe(404);

    expect((await t.owner.http.get(`${t.base}/companies`)).status).toBe(200);
    await ctx.app.modules.tenants.service.suspend(t.tenantId, { actor: { type: 'cli' }, reason: 'abuse' });
    expect((await t.owner.http.get(`${t.base}/companies`)).status).toBe(423);
  });

  it('another node sees a change made elsewhere within auth.cacheMs', async () => {
    const ttl = 400;
    const config = { ...ctx.core.config, auth: { ...ctx.core.config.auth, cacheMs: ttl } };
    const nodeCore = createCore(config, { clock: ctx.core.clock });
    const node = await createApp(nodeCore);
    await node.http.listen({ port: 0, host: '127.0.0.1' });
    try {
      const t = await createWorkspace(ctx);
      const member = await createMember(ctx, { role: 'collaborator', customerId: t.owner.customerId });
      const onNode = makeClient(`http://127.0.0.1:${(node.http.server.address() as { port: number }).port}`);
      onNode.cookie = member.http.cookie;
      onNode.csrfToken = member.http.csrfToken;
      expect((await onNode.get(`${t.base}/companies`)).status).toBe(200);
      // Removed on the main node: the other node may still serve it from its cache, but not after the TTL.
      expect((await t.owner.http.delete(`/api/v1/customers/${t.owner.customerId}/members/${member.userId}`)).status).toBe(204);
      await new Promise((resolve) => setTimeout(resolve, ttl + 50));
      expect((await onNode.get(`${t.base}/companies`)).status).toBe(404);
    } finally {
      await node.close();
    }
  });
});
