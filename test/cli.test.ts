import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './cli.ts';
import { createTestContext, type TestContext } from './context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('havre CLI', () => {
  it('documents every command with --help', async () => {
    const help = await runCli(ctx, ['--help']);
    expect(help.code).toBe(0);
    for (const cmd of ['start', 'migrate', 'operator', 'server', 'tenant', 'audit', 'mail', 'promises']) expect(help.stdout).toContain(cmd);
    const sub = await runCli(ctx, ['audit', 'verify', '--help']);
    expect(sub.stdout).toContain('--expect-head');
  });

  it('migrate is idempotent', async () => {
    const r = await runCli(ctx, ['migrate']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('up to date');
  });

  it('[SEC-4] `havre audit verify` passes on an intact log and exits non-zero once an entry is altered', async () => {
    await ctx.core.audit.record({ actorType: 'system', action: 'cli.test', data: { n: 1 } });
    await ctx.core.audit.record({ actorType: 'system', action: 'cli.test', data: { n: 2 } });
    const ok = await runCli(ctx, ['--json', 'audit', 'verify']);
    expect(ok.code).toBe(0);
    const report = JSON.parse(ok.stdout);
    expect(report.ok).toBe(true);

    const client = new pg.Client({ connectionString: ctx.core.config.databaseUrl });
    await client.connect();
    await client.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
    await client.query(`UPDATE audit_log SET actor_id = 'mallory' WHERE action = 'cli.test' AND data->>'n' = '1'`);
    await client.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
    await client.end();

    const bad = await runCli(ctx, ['audit', 'verify']);
    expect(bad.code).toBe(3);
    expect(bad.stdout).toContain('AUDIT LOG TAMPERED');
    expect(bad.stdout).toContain('altered');
  });

  it('reads the mail outbox with `mail list` and `mail show`', async () => {
    const { id } = await ctx.core.mailer.send({ to: 'reader@example.test', template: 'test', locale: 'en', subject: 'Your link', text: 'https://example.test/verify?token=abc' });
    const list = await runCli(ctx, ['mail', 'list', '--to', 'reader@example.test']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toContain('Your link');
    const show = await runCli(ctx, ['mail', 'show', id]);
    expect(show.stdout).toContain('token=abc');
    const missing = await runCli(ctx, ['mail', 'show', '00000000-0000-0000-0000-000000000000']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('no e-mail with id');
    const badLimit = await runCli(ctx, ['mail', 'list', '--limit', 'many']);
    expect(badLimit.code).not.toBe(0);
    expect(badLimit.stderr).toContain('--limit');
  });

  it('stops with a clear message on a bad configuration', async () => {
    const r = await runCli({ ...ctx, core: { ...ctx.core, config: { ...ctx.core.config, masterKey: 'short' } } } as TestContext, ['migrate']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('masterKey');
    expect(r.stderr).not.toContain('    at '); // no stack trace
  });
});
