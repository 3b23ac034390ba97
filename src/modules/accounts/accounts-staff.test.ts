import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type HttpClient, type TestContext } from '../../../test/context.ts';
import type { CliEnv, CliRunner } from '../../cli/context.ts';
import { registerOperatorCommands } from './accounts-cli.ts';
import { signIn, signUp, totpCode, uniqueEmail } from './accounts-fixtures.ts';
import { totpSealContext } from './totp.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

const STEP = 30_000;

/** Enrols TOTP on a signed-in (or pending) client; returns the secret. Leaves the clock on a fresh step. */
async function enrolTotp(http: HttpClient): Promise<string> {
  const start = await http.post('/api/v1/me/totp');
  expect(start.status).toBe(201);
  expect(start.body.otpauthUri).toMatch(/^otpauth:\/\/totp\/Havre:.+secret=/);
  const confirm = await http.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) });
  expect(confirm.status).toBe(200);
  ctx.clock.advance(STEP);
  return start.body.secret;
}

async function newOperator(role: 'admin' | 'support' | 'billing') {
  const email = uniqueEmail(role);
  const { password } = await ctx.app.modules.accounts.service.createOperator({ email, name: `Staff ${role}`, role });
  return { email, password };
}

describe('operator staff', () => {
  it('ensureFirstOperator creates one admin with a random password, once, even when called concurrently', async () => {
    const results = await Promise.all([1, 2, 3].map(() => ctx.app.modules.accounts.service.ensureFirstOperator()));
    const created = results.filter((r) => r !== null);
    expect(created).toHaveLength(1);
    expect(created[0]!.email).toBe('admin@havre.localhost');
    expect(created[0]!.password.length).toBeGreaterThanOrEqual(20);
    expect(await ctx.app.modules.accounts.service.ensureFirstOperator()).toBeNull();
    const admins = await ctx.core.db.selectFrom('users').select(['email', 'staff_role']).where('staff_role', 'is not', null).execute();
    expect(admins).toEqual([{ email: 'admin@havre.localhost', staff_role: 'admin' }]);
    await signIn(ctx, 'admin@havre.localhost', created[0]!.password);
  });

  it('[SEC-2] staff must pass TOTP: enrolment at first sign-in, then a code at every sign-in', async () => {
    const { email, password } = await newOperator('admin');
    const http = ctx.client();
    const first = await http.post('/api/v1/sessions', { email, password });
    expect(first.status).toBe(200);
    expect(first.body.secondFactor).toBe('enrollment_required');
    // The pending session opens nothing else.
    for (const res of [await http.get('/api/v1/me'), await http.get('/api/v1/admin/staff'), await http.post('/api/v1/tokens', { name: 'x' })]) {
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('second_factor_required');
    }
    expect((await http.get('/api/v1/sessions/current')).body.secondFactor).toBe('enrollment_required');
    const start = await http.post('/api/v1/me/totp');
    const wrongConfirm = await http.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) === '000000' ? '111111' : '000000' });
    expect(wrongConfirm.status).toBe(400);
    expect((await http.post('/api/v1/me/totp/confirm', { code: totpCode(ctx, start.body.secret) })).status).toBe(200);
    const secret = start.body.secret as string;
    expect((await http.get('/api/v1/me')).body.user).toMatchObject({ staffRole: 'admin', totpEnabled: true });
    expect((await http.get('/api/v1/admin/staff')).status).toBe(200);
    ctx.clock.advance(STEP);

    // Next sign-in: the password alone gives a pending session.
    const again = ctx.client();
    const second = await again.post('/api/v1/sessions', { email, password });
    expect(second.body.secondFactor).toBe('required');
    expect((await again.get('/api/v1/admin/staff')).status).toBe(401);
    // A pending session cannot replace the enrolled secret.
    expect((await again.post('/api/v1/me/totp')).body.code).toBe('totp_already_enabled');
    const bad = await again.post('/api/v1/sessions/current/second-factor', { code: totpCode(ctx, secret) === '123456' ? '654321' : '123456' });
    expect(bad.status).toBe(401);
    expect(bad.body.code).toBe('invalid_code');
    const code = totpCode(ctx, secret);
    const ok = await again.post('/api/v1/sessions/current/second-factor', { code });
    expect(ok.status).toBe(200);
    expect((await again.get('/api/v1/admin/staff')).status).toBe(200);

    // A code works once (replay), even within its time step.
    const replay = await ctx.client().post('/api/v1/sessions', { email, password, code });
    expect(replay.status).toBe(401);
    ctx.clock.advance(STEP);
    // Or in one step, password and code together.
    const direct = ctx.client();
    const res = await direct.post('/api/v1/sessions', { email, password, code: totpCode(ctx, secret) });
    expect(res.body.secondFactor).toBe('none');
    expect((await direct.get('/api/v1/admin/staff')).status).toBe(200);
    // Staff cannot turn TOTP off, nor use API tokens.
    ctx.clock.advance(STEP);
    const off = await direct.request('DELETE', '/api/v1/me/totp', { body: { code: totpCode(ctx, secret) } });
    expect(off.status).toBe(403);
    expect(off.body.code).toBe('totp_mandatory');
    expect((await direct.post('/api/v1/tokens', { name: 'staff' })).body.code).toBe('staff_tokens_forbidden');
  });

  it('[SEC-3] the TOTP secret is stored sealed with the master key, not in clear', async () => {
    const { email, password } = await newOperator('support');
    const http = ctx.client();
    await http.post('/api/v1/sessions', { email, password });
    const secret = await enrolTotp(http);
    const row = await ctx.core.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirstOrThrow();
    expect(row.totp_secret_sealed).toMatch(/^v1\./);
    expect(row.totp_secret_sealed).not.toContain(secret);
    expect(JSON.stringify(row)).not.toContain(secret);
    expect(ctx.core.secrets.open(row.totp_secret_sealed!, totpSealContext(row.id))).toBe(secret);
    // Bound to its user: pasted onto another account it does not open.
    expect(() => ctx.core.secrets.open(row.totp_secret_sealed!, totpSealContext('00000000-0000-4000-8000-000000000000'))).toThrow();
  });

  it('admin routes: only admins list and create staff; the new password is shown once', async () => {
    const admin = await newOperator('admin');
    const http = ctx.client();
    await http.post('/api/v1/sessions', admin);
    await enrolTotp(http);
    const created = await http.post('/api/v1/admin/staff', { email: uniqueEmail('billing'), name: 'Bill Ing', role: 'billing' });
    expect(created.status).toBe(201);
    expect(created.body.user).toMatchObject({ staffRole: 'billing', totpEnabled: false });
    expect(created.body.password.length).toBeGreaterThanOrEqual(20);
    expect(JSON.stringify(created.body.user)).not.toMatch(/password|hash/i);
    const list = await http.get('/api/v1/admin/staff');
    expect(list.body.staff.map((s: { email: string }) => s.email)).toContain(created.body.user.email);
    const audit = await ctx.core.db.selectFrom('audit_log').selectAll().where('action', '=', 'staff.created').where('subject_id', '=', created.body.user.id).executeTakeFirstOrThrow();
    expect(audit.actor_type).toBe('staff');

    const member = await signUp(ctx);
    expect((await member.http.get('/api/v1/admin/staff')).body.code).toBe('staff_only');
    const support = await newOperator('support');
    const supportHttp = ctx.client();
    await supportHttp.post('/api/v1/sessions', support);
    await enrolTotp(supportHttp);
    const denied = await supportHttp.post('/api/v1/admin/staff', { email: uniqueEmail(), name: 'X', role: 'admin' });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('staff_role_required');
  });

  it('`havre operator create` prints the e-mail and the password once', async () => {
    const out: string[] = [];
    const program = new Command().exitOverride();
    const env = { modules: ctx.app.modules, core: ctx.core, print: (v: unknown, human: (v: unknown) => string) => out.push(human(v)) } as unknown as CliEnv;
    // The command's function is the runner's last argument (after the modules it names, if any).
    registerOperatorCommands(program, ((...args: unknown[]) => (args.at(-1) as (e: CliEnv) => Promise<void>)(env)) as CliRunner);
    const email = uniqueEmail('cli');
    await program.parseAsync(['node', 'havre', 'operator', 'create', '--email', email, '--name', 'Cli Admin', '--role', 'admin']);
    expect(out[0]).toContain(email);
    const password = /password[^:]*: (\S+)/.exec(out[0]!)![1]!;
    expect(password.length).toBeGreaterThanOrEqual(20);
    const res = await ctx.client().post('/api/v1/sessions', { email, password });
    expect(res.body.secondFactor).toBe('enrollment_required');
  });
});

describe('optional TOTP for members', () => {
  it('[SEC-2] a member may turn TOTP on (then sign-in needs a code) and off again with a current code', async () => {
    const member = await signUp(ctx);
    const secret = await enrolTotp(member.http);
    const pending = ctx.client();
    const res = await pending.post('/api/v1/sessions', { email: member.email, password: member.password });
    expect(res.body.secondFactor).toBe('required');
    expect((await pending.get('/api/v1/me')).status).toBe(401);
    expect((await pending.post('/api/v1/sessions/current/second-factor', { code: totpCode(ctx, secret) })).status).toBe(200);
    expect((await pending.get('/api/v1/me')).status).toBe(200);
    ctx.clock.advance(STEP);
    expect((await member.http.request('DELETE', '/api/v1/me/totp', { body: { code: '000000' === totpCode(ctx, secret) ? '111111' : '000000' } })).status).toBe(400);
    const off = await member.http.request('DELETE', '/api/v1/me/totp', { body: { code: totpCode(ctx, secret) } });
    expect(off.status).toBe(200);
    expect(off.body.user.totpEnabled).toBe(false);
    expect((await ctx.client().post('/api/v1/sessions', { email: member.email, password: member.password })).body.secondFactor).toBe('none');
  });
});
