/** `havre billing run`, `havre invoice show|pdf` and `havre usage` as an operator runs them (child processes). */
import { chmod, mkdtemp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createWorkspace, type Workspace } from '../workspace/workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-11-16T10:00:00Z') });
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Atelier' });
  const sub = await ws.owner.http.post('/api/v1/subscriptions', { tenantId: ws.tenantId, plan: 'p49' });
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
});
afterAll(async () => ctx?.close());

describe('havre billing / invoice / usage', () => {
  it('[BIL-9] havre billing run issues the month once (a second run finds nothing new); invoice show and pdf read it back', async () => {
    const first = await runCli(ctx, ['billing', 'run', '--month', '2026-11']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/2026-11: 1 invoice\(s\) issued, 0 already invoiced/);
    const second = await runCli(ctx, ['billing', 'run', '--month', '2026-11']);
    expect(second.stdout).toMatch(/2026-11: nothing new — 1 subscription\(s\) already invoiced/);
    const bad = await runCli(ctx, ['billing', 'run', '--month', '2026-13']);
    expect(bad.code).toBe(2);

    const invoice = await ctx.core.db.selectFrom('billing_documents').select(['number', 'net_cents']).where('kind', '=', 'invoice').executeTakeFirstOrThrow();
    expect(invoice.net_cents).toBe('2450'); // 4,900 × 15/30 (16 to 30 November)
    const shown = await runCli(ctx, ['invoice', 'show', invoice.number!]);
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain(`Invoice ${invoice.number}`);
    expect(shown.stdout).toMatch(/issued +2026-11-16, due 2026-12-16/);

    const dir = await mkdtemp(path.join(inject('testRoot'), 'invoice-'));
    await chmod(dir, 0o755);
    const file = path.join(dir, 'invoice.pdf');
    const pdf = await runCli(ctx, ['invoice', 'pdf', invoice.number!, '--out', file, '--lang', 'en']);
    expect(pdf.code, pdf.stderr).toBe(0);
    expect((await readFile(file)).subarray(0, 5).toString()).toBe('%PDF-');
    expect((await runCli(ctx, ['invoice', 'show', 'F999999'])).code).toBe(2);

    const usage = await runCli(ctx, ['usage', '--tenant', ws.tenantId]);
    expect(usage.code, usage.stderr).toBe(0);
    expect(usage.stdout).toContain('plan p49');
  });
});
