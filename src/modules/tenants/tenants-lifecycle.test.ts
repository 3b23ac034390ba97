import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember, createStaff, registerServers, type Member } from '../../../test/factories.ts';
import { AppError } from '../../lib/errors.ts';
import type { ServerView } from '../fleet/index.ts';
import { canTransition, TENANT_STATES, type TenantState } from './tenant-states.ts';

let ctx: TestContext;
let servers: Record<string, ServerView>;
let owner: Member;

beforeAll(async () => {
  ctx = await createTestContext();
  servers = await registerServers(ctx);
  owner = await createMember(ctx);
});
afterAll(async () => ctx?.close());

const service = () => ctx.app.modules.tenants.service;

async function newTenant(name = 'Lifecycle'): Promise<string> {
  const { tenant } = await service().create({ customerId: owner.customerId, name, actor: { type: 'cli' } });
  return tenant.id;
}

/** Test setup only: puts a tenant in `state` without going through the lifecycle. */
async function forceState(id: string, state: TenantState) {
  await ctx.core.db.updateTable('tenants').set({ state }).where('id', '=', id).execute();
}

async function stateOf(id: string) {
  return (await ctx.core.db.selectFrom('tenants').select('state').where('id', '=', id).executeTakeFirstOrThrow()).state;
}

async function history(id: string) {
  return ctx.core.db.selectFrom('tenant_transitions').selectAll().where('tenant_id', '=', id).orderBy('id').execute();
}

async function auditOf(id: string) {
  return ctx.core.db.selectFrom('audit_log').selectAll().where('subject_type', '=', 'tenant').where('subject_id', '=', id).where('action', '=', 'tenant.transition').orderBy('seq').execute();
}

describe('tenant lifecycle', () => {
  it('[TEN-3] creation goes provisioning → trial, the trial ending 14 days later, both steps recorded', async () => {
    const res = await owner.http.post('/api/v1/tenants', { name: 'Acme books' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ customerId: owner.customerId, name: 'Acme books', region: 'fr', server: servers.fr!.name, state: 'trial', plan: null });
    expect(res.body.createdAt).toBe('2026-11-23T09:00:00.000Z');
    expect(res.body.trialEndsAt).toBe('2026-12-07T09:00:00.000Z');

    const steps = (await history(res.body.id)).map((h) => [h.from_state, h.to_state, h.actor_type, h.actor_id]);
    expect(steps).toEqual([
      [null, 'provisioning', 'user', owner.userId],
      ['provisioning', 'trial', 'user', owner.userId],
    ]);
    const audit = await auditOf(res.body.id);
    expect(audit.map((a) => a.data)).toEqual([
      { from: null, to: 'provisioning' },
      { from: 'provisioning', to: 'trial', reason: 'database ready' },
    ]);
    expect(audit.every((a) => a.customer_id === owner.customerId)).toBe(true);

    const row = await ctx.core.db
      .selectFrom('tenants')
      .innerJoin('tenant_databases', 'tenant_databases.id', 'tenants.tenant_database_id')
      .select(['tenant_databases.state', 'tenant_databases.server_id'])
      .where('tenants.id', '=', res.body.id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ state: 'assigned', server_id: servers.fr!.id });

    const shown = await owner.http.get(`/api/v1/tenants/${res.body.id}/transitions`);
    expect(shown.body.transitions.map((t: any) => `${t.from}→${t.to}`)).toEqual(['null→provisioning', 'provisioning→trial']);
  });

  it('[TEN-3] every allowed transition works and is recorded; every other one is a 409 that changes nothing', async () => {
    const id = await newTenant();
    let allowed = 0;
    let refused = 0;
    for (const from of TENANT_STATES) {
      for (const to of TENANT_STATES) {
        await forceState(id, from);
        const before = { history: (await history(id)).length, audit: (await auditOf(id)).length };
        const attempt = service().transition(id, to, { actor: { type: 'system' }, reason: `test ${from}→${to}` });
        if (canTransition(from, to)) {
          allowed++;
          expect((await attempt).state, `${from}→${to}`).toBe(to);
          expect(await stateOf(id)).toBe(to);
          const h = await history(id);
          expect(h).toHaveLength(before.history + 1);
          expect(h.at(-1)).toMatchObject({ from_state: from, to_state: to, reason: `test ${from}→${to}`, actor_type: 'system' });
          const a = await auditOf(id);
          expect(a).toHaveLength(before.audit + 1);
          expect(a.at(-1)!.data).toEqual({ from, to, reason: `test ${from}→${to}` });
        } else {
          refused++;
          const err = await attempt.then(() => null, (e: unknown) => e);
          expect(err, `${from}→${to} must be refused`).toBeInstanceOf(AppError);
          expect(err).toMatchObject({ status: 409, code: 'invalid_transition', details: { currentState: from, targetState: to } });
          expect(await stateOf(id)).toBe(from);
          expect((await history(id)).length).toBe(before.history);
          expect((await auditOf(id)).length).toBe(before.audit);
        }
      }
    }
    expect(allowed).toBe(12);
    expect(refused).toBe(24);
  });

  it('[TEN-3] of two concurrent transitions exactly one wins, and only its change is recorded', async () => {
    // The same change twice (two workers suspending an unpaid tenant), and two different changes
    // that each expect the state they saw (`from`): in both races exactly one may win.
    const races: [TenantState, TenantState, TenantState[] | undefined][] = [
      ['suspended', 'suspended', undefined],
      ['suspended', 'cancelled', ['active']],
    ];
    const id = await newTenant('Race');
    for (const [first, second, from] of races) {
      for (let round = 0; round < 5; round++) {
        await forceState(id, 'active');
        const before = (await history(id)).length;
        const options = { actor: { type: 'system' as const }, ...(from && { from }) };
        const results = await Promise.allSettled([service().transition(id, first, options), service().transition(id, second, options)]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({ status: 409, code: 'invalid_transition' });
        const winner = (won[0] as PromiseFulfilledResult<{ state: TenantState }>).value.state;
        expect(await stateOf(id)).toBe(winner);
        const h = await history(id);
        expect(h).toHaveLength(before + 1);
        expect(h.at(-1)).toMatchObject({ from_state: 'active', to_state: winner });
      }
    }
  });

  it('[TEN-3] staff suspend and resume over HTTP: recorded with the staff actor; a second suspend is a 409', async () => {
    const id = await newTenant('Staff actions');
    const billing = await createStaff(ctx, 'billing');
    const suspended = await billing.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'unpaid invoice' });
    expect(suspended.status).toBe(200);
    expect(suspended.body.state).toBe('suspended');

    const again = await billing.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'twice' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'invalid_transition', currentState: 'suspended' });

    // The trial has not ended and no plan was chosen: resuming returns to the trial.
    const resumed = await billing.http.post(`/api/v1/admin/tenants/${id}/resume`);
    expect(resumed.body).toMatchObject({ state: 'trial' });

    const details = await billing.http.get(`/api/v1/admin/tenants/${id}`);
    expect(details.body.transitions.slice(-2)).toMatchObject([
      { from: 'trial', to: 'suspended', reason: 'unpaid invoice', actorType: 'staff', actorId: billing.userId },
      { from: 'suspended', to: 'trial', actorType: 'staff', actorId: billing.userId },
    ]);
    const seen = await owner.http.get(`/api/v1/tenants/${id}/transitions`);
    expect(seen.body.transitions.at(-2)).toEqual({ from: 'trial', to: 'suspended', reason: 'unpaid invoice', actorType: 'staff', at: expect.any(String) });

    // After the trial ended, resuming makes it active (the trial end moved back: test setup).
    await billing.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'abuse' });
    await ctx.core.db.updateTable('tenants').set({ trial_ends_at: new Date(ctx.clock.now().getTime() - 1000) }).where('id', '=', id).execute();
    const later = await billing.http.post(`/api/v1/admin/tenants/${id}/resume`, { reason: 'cleared' });
    expect(later.body.state).toBe('active');
    const resumeActive = await billing.http.post(`/api/v1/admin/tenants/${id}/resume`);
    expect(resumeActive.status).toBe(409);
  });

  it('staff routes are for staff with the right role; concurrent staff suspends leave one winner', async () => {
    const id = await newTenant('Guarded');
    const support = await createStaff(ctx, 'support');
    expect((await support.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'x' })).body.code).toBe('staff_role_required');
    expect((await support.http.get(`/api/v1/admin/tenants/${id}`)).status).toBe(200);
    expect((await owner.http.get('/api/v1/admin/tenants')).status).toBe(403);
    expect((await owner.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'x' })).status).toBe(403);
    expect((await ctx.client().get('/api/v1/admin/tenants')).status).toBe(401);

    const admin = await createStaff(ctx, 'admin');
    expect((await admin.http.post(`/api/v1/admin/tenants/${id}/suspend`, {})).status).toBe(400);
    expect((await admin.http.get('/api/v1/admin/tenants/not-a-uuid')).body.code).toBe('tenant_not_found');
    const [a, b] = await Promise.all([
      admin.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'one' }),
      admin.http.post(`/api/v1/admin/tenants/${id}/suspend`, { reason: 'two' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect((await history(id)).filter((h) => h.to_state === 'suspended')).toHaveLength(1);

    const list = await admin.http.get(`/api/v1/admin/tenants?customerId=${owner.customerId}&state=suspended`);
    expect(list.body.tenants.map((t: any) => t.id)).toContain(id);
    expect(list.body.tenants.every((t: any) => t.state === 'suspended' && t.customerId === owner.customerId)).toBe(true);
  });

  it('[SEC-4] tenant transitions keep the audit chain intact', async () => {
    expect((await ctx.core.audit.verify()).ok).toBe(true);
  });
});
