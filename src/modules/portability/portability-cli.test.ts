/** `havre export` and `havre import` as an operator runs them (child processes): a whole tenant out, then into a new one. */
import { chmod, mkdtemp, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
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
