/** `havre export` and `havre import` as an operator runs them (child processes): a whole tenant out, then into a new one. */
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { toolSearchPath } from '../../config/config.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';

let ctx: TestContext;
let source: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  source = await createWorkspace(ctx, { name: 'Source' });
  const company = await createRecord(source.owner.http, `${source.base}/companies`, { name: 'Dupont, "père" & fils', country: 'FR' });
  await createRecord(source.owner.http, `${source.base}/contacts`, { companyId: company.id, firstName: 'Zoé', lastName: 'Martin' });
});
afterAll(async () => ctx?.close());

describe('havre export / import', () => {
  it('[EXP-3] havre export writes the archive with a progress line per table, and havre import reproduces it in a new, empty tenant', async () => {
    const dir = await mkdtemp(path.join(inject('testRoot'), 'cli-export-'));
    await chmod(dir, 0o755);
    const out = path.join(dir, 'source.zip');
    const exported = await runCli(ctx, ['export', '--tenant', source.tenantId, '--out', out, '--locale', 'en']);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(/^\[csv \d+\/\d+\] [\d,]+ of [\d,]+ rows$/m);
    expect(exported.stdout).toMatch(/^export [0-9a-f-]{36} complete: .*source\.zip \(\d+ bytes, sha256 [0-9a-f]{64}\)$/m);
    expect((await stat(out)).size).toBeGreaterThan(1000);

    const target = await createWorkspace(ctx, { name: 'Target' });
    const imported = await runCli(ctx, ['import', '--tenant', target.tenantId, out]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toMatch(/imported \d+ rows in \d+ tables and 0 attachments/);
    const rows = (ws: Workspace) => tenantQuery(ctx, ws, `SELECT c.id, c.name, k.first_name FROM companies c JOIN contacts k ON k.company_id = c.id ORDER BY c.id`);
    expect(await rows(target)).toEqual(await rows(source));
    // Importing again into a tenant that now has records is refused, and changes nothing.
    const again = await runCli(ctx, ['import', '--tenant', target.tenantId, out]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/not empty|records/i);
  });
});

describe('a crash in the middle of an export', () => {
  it('[EXP-1] kill -9 of the exporting process leaves no archive that looks complete; the lapsed export is failed and a new one succeeds', async () => {
    const big = await createWorkspace(ctx, { name: 'Big' });
    const company = await createRecord(big.owner.http, `${big.base}/companies`, { name: 'Grand Compte' });
    await tenantQuery(ctx, big, `INSERT INTO notes (id, company_id, body, created_at, updated_at) SELECT gen_random_uuid(), $1, repeat(md5(g::text), 20), now(), now() FROM generate_series(1, 150000) g`, [company.id]);
    const child = spawn(process.execPath, [path.resolve(import.meta.dirname, '../../cli/havre.ts'), 'export', '--tenant', big.tenantId], {
      env: { PATH: toolSearchPath(), HAVRE_HOME: ctx.core.config.home, HAVRE_DATABASE_URL: ctx.core.config.databaseUrl, HAVRE_MASTER_KEY: ctx.core.config.masterKey, HAVRE_LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Killed once it has written some of the archive (a progress line past the first table).
    await new Promise<void>((resolve, reject) => {
      let seen = 0;
      child.stdout.on('data', (d: Buffer) => {
        seen += (d.toString().match(/^\[/gm) ?? []).length;
        if (seen >= 2) resolve();
      });
      child.on('exit', () => reject(new Error('the export ended before it could be killed')));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const row = await ctx.core.db.selectFrom('exports').selectAll().where('tenant_id', '=', big.tenantId).executeTakeFirstOrThrow();
    expect(row.state).toBe('running');
    const dir = path.join(ctx.core.config.home, 'exports', big.tenantId);
    const files = await readdir(dir);
    expect(files.every((f) => f.endsWith('.partial'))).toBe(true); // nothing that looks complete
    // The lease lapses (set in the past instead of waiting), the sweep fails it and removes the partial file.
    await ctx.core.db.updateTable('exports').set({ lease_until: new Date(Date.now() - 1000) }).where('id', '=', row.id).execute();
    const again = await runCli(ctx, ['export', '--tenant', big.tenantId]);
    expect(again.code, again.stderr).toBe(0);
    const rows = await ctx.core.db.selectFrom('exports').select(['id', 'state']).where('tenant_id', '=', big.tenantId).orderBy('started_at').execute();
    expect(rows.map((r) => r.state)).toEqual(['failed', 'complete']);
    expect((await readdir(dir)).some((f) => f.endsWith('.partial'))).toBe(false);
  }, 120_000);
});
