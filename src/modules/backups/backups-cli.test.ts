/**
 * `havre backup` as an operator runs it (a child process against the test context's database and
 * backup locations): take, list, verify, download, restore and prune one tenant's backup.
 */
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createRecord, createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';
import { EXIT_SOME_FAILED } from './backups-cli.ts';

let ctx: TestContext;
let ws: Workspace;
let backupId: string;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Quai Ouest' });
  await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Dupont SARL', registrationId: '732829320', country: 'FR' });
});
afterAll(async () => ctx?.close());

describe('havre backup', () => {
  it('havre backup run --tenant takes a complete backup with a progress line; list --json shows it in fr and de', async () => {
    const r = await runCli(ctx, ['backup', 'run', '--tenant', ws.tenantId]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^\\[1/1\\] ${ws.tenantId} complete \\d+\\.\\d MB in \\d+\\.\\d s$`, 'm'));
    expect(r.stdout).toContain('1 backup(s) complete');

    const list = await runCli(ctx, ['--json', 'backup', 'list', '--tenant', ws.tenantId]);
    expect(list.code, list.stderr).toBe(0);
    const items = JSON.parse(list.stdout);
    expect(items).toEqual([expect.objectContaining({ trigger: 'on_demand', state: 'complete', verification: 'pending', locations: ['de', 'fr'] })]);
    backupId = items[0].id;
    const human = await runCli(ctx, ['backup', 'list', '--tenant', ws.tenantId]);
    expect(human.stdout).toMatch(new RegExp(`^${backupId} .* on_demand +complete +pending .* de,fr$`, 'm'));

    // Nothing is due: the tenant was just backed up. Bad input exits 2.
    const due = await runCli(ctx, ['backup', 'run', '--due']);
    expect(due.code, due.stderr).toBe(0);
    expect(due.stdout).toContain('no tenant is due for its backup');
    expect((await runCli(ctx, ['backup', 'run'])).code).toBe(2);
  }, 60_000);

  it('havre backup verify verifies every pending backup (exit 0), or one by id', async () => {
    const r = await runCli(ctx, ['backup', 'verify']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`[1/1] ${backupId} (tenant ${ws.tenantId}) verified`);
    expect(r.stdout).toContain('1 backup(s) checked, 0 failed');
    const row = await ctx.core.db.selectFrom('backups').select('verification').where('id', '=', backupId).executeTakeFirstOrThrow();
    expect(row.verification).toBe('verified');
    expect((await runCli(ctx, ['backup', 'verify'])).stdout).toContain('no backup is waiting for verification');

    const one = await runCli(ctx, ['--json', 'backup', 'verify', '--backup', backupId]);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual({ backupId, tenantId: ws.tenantId, ok: true, problems: [] });
    expect(EXIT_SOME_FAILED).toBe(3);
  }, 60_000);

  it('[BKP-5] havre backup download writes the archive stock pg_restore reads, audited as cli with the reason, never overwriting a file', async () => {
    const dir = await mkdtemp(path.join(inject('testRoot'), 'cli-download-'));
    await chmod(dir, 0o755);
    const out = path.join(dir, 'backup.tar');
    const r = await runCli(ctx, ['backup', 'download', backupId, '--out', out, '--reason', 'ticket 4711: customer lost its server']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^wrote \\d+ bytes \\(.* MB\\) to ${out}$`, 'm'));
    expect(await readdir(dir)).toEqual(['backup.tar']);
    execFileSync('tar', ['xf', 'backup.tar'], { cwd: dir });
    expect((await readdir(dir)).sort()).toEqual(['README.txt', 'attachments.tar', 'backup.tar', 'database.pgdump.gz', 'manifest.json']);
    execFileSync('gunzip', ['database.pgdump.gz'], { cwd: dir }); // format havre-backup/2: stock gunzip, then stock pg_restore
    const listing = execFileSync('pg_restore', ['--list', path.join(dir, 'database.pgdump')]).toString();
    expect(listing).toMatch(/TABLE public companies/);

    const audit = await ctx.core.db.selectFrom('audit_log').selectAll().where('action', '=', 'backup.downloaded').execute();
    expect(audit).toEqual([expect.objectContaining({ actor_type: 'cli', subject_id: backupId, data: expect.objectContaining({ reason: 'ticket 4711: customer lost its server' }) })]);

    const again = await runCli(ctx, ['backup', 'download', backupId, '--out', out, '--reason', 'again']);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('never overwritten');
    const help = await runCli(ctx, ['backup', 'download', '--help']);
    expect(help.stdout).toContain('master key');
  }, 60_000);

  it('[BKP-5] havre backup restore puts a backup into a new tenant; in place only with the typed name', async () => {
    const refused = await runCli(ctx, ['backup', 'restore', backupId, '--in-place', '--confirm', 'wrong']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('confirmation_required');

    const r = await runCli(ctx, ['--json', 'backup', 'restore', backupId]);
    expect(r.code, r.stderr).toBe(0);
    const restored = JSON.parse(r.stdout);
    expect(restored).toEqual(expect.objectContaining({ backupId, mode: 'new', state: 'succeeded' }));
    expect(restored.tenantId).not.toBe(ws.tenantId);
    const tenant = await ctx.core.db.selectFrom('tenants').select(['customer_id', 'name']).where('id', '=', restored.tenantId).executeTakeFirstOrThrow();
    expect(tenant.customer_id).toBe(ws.owner.customerId);
    expect(tenant.name).toMatch(/^Quai Ouest \(\d{4}-\d{2}-\d{2}\)$/);
  }, 60_000);

  it('havre backup prune applies retention to every tenant with backups and keeps the only one', async () => {
    const r = await runCli(ctx, ['backup', 'prune']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${ws.tenantId} kept 1, pruned 0, waiting 0`);
    const one = await runCli(ctx, ['--json', 'backup', 'prune', '--tenant', ws.tenantId]);
    expect(JSON.parse(one.stdout)).toEqual([{ tenantId: ws.tenantId, kept: 1, pruned: 0, waiting: 0 }]);
    const row = await ctx.core.db.selectFrom('backups').select('state').where('id', '=', backupId).executeTakeFirstOrThrow();
    expect(row.state).toBe('complete');
  }, 60_000);
});
