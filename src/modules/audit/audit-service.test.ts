import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { canonicalJson } from './audit-service.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

/** A superuser connection to this test file's control-plane database: the only way to tamper. */
async function asSuperuser<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ctx.core.config.databaseUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function appendSome(n: number, tag: string) {
  for (let i = 0; i < n; i++) {
    await ctx.core.audit.record({ actorType: 'system', action: 'test.event', subjectType: 'test', subjectId: `${tag}-${i}`, data: { i, tag, nested: { b: 2, a: [1, 'x'] } } });
  }
}

describe('audit log', () => {
  it('[SEC-4] chains entries by hash and verifies an untouched log', async () => {
    await appendSome(5, 'intact');
    const result = await ctx.core.audit.verify();
    expect(result.ok).toBe(true);
    expect(result.checked).toBeGreaterThanOrEqual(5);
    const rows = await ctx.core.db.selectFrom('audit_log').select(['seq', 'prev_hash', 'hash']).orderBy('seq').execute();
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
  });

  it('[SEC-4] refuses UPDATE, DELETE and TRUNCATE on the audit log', async () => {
    await appendSome(1, 'immutable');
    await asSuperuser(async (c) => {
      await expect(c.query(`UPDATE audit_log SET action = 'x'`)).rejects.toThrow(/append-only/);
      await expect(c.query(`DELETE FROM audit_log`)).rejects.toThrow(/append-only/);
      await expect(c.query(`TRUNCATE audit_log`)).rejects.toThrow(/append-only/);
    });
  });

  it('[SEC-4] keeps one unbroken chain under concurrent appends', async () => {
    await Promise.all(Array.from({ length: 20 }, (_, i) => ctx.core.audit.record({ actorType: 'system', action: 'test.concurrent', data: { i } })));
    expect((await ctx.core.audit.verify()).ok).toBe(true);
  });

  it('[SEC-4] an entry written in a rolled-back transaction leaves no trace', async () => {
    const before = (await ctx.core.audit.verify()).checked;
    await expect(
      ctx.core.db.transaction().execute(async (trx) => {
        await ctx.core.audit.record({ actorType: 'system', action: 'test.rolled_back' }, trx);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const after = await ctx.core.audit.verify();
    expect(after.ok).toBe(true);
    expect(after.checked).toBe(before);
  });

  it('[SEC-4] detects an altered entry, a removed entry and a cut-off tail', async () => {
    await appendSome(6, 'tamper');
    const clean = await ctx.core.audit.verify();
    expect(clean.ok).toBe(true);
    const head = clean.head!;
    const target = await ctx.core.db.selectFrom('audit_log').select('seq').where('subject_id', '=', 'tamper-2').executeTakeFirstOrThrow();
    const removed = await ctx.core.db.selectFrom('audit_log').select('seq').where('subject_id', '=', 'tamper-3').executeTakeFirstOrThrow();

    await asSuperuser(async (c) => {
      await c.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
      await c.query(`UPDATE audit_log SET data = jsonb_set(data, '{i}', '99') WHERE seq = $1`, [target.seq]);
      await c.query('DELETE FROM audit_log WHERE seq = $1', [removed.seq]);
      await c.query('DELETE FROM audit_log WHERE seq = $1', [head.seq]);
      await c.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
    });

    const result = await ctx.core.audit.verify({ expectHead: head });
    expect(result.ok).toBe(false);
    const kinds = result.problems.map((p) => `${p.seq}:${p.kind}`);
    expect(kinds).toContain(`${target.seq}:altered`);
    expect(result.problems.some((p) => p.kind === 'missing' && BigInt(p.seq) === BigInt(removed.seq) + 1n)).toBe(true);
    expect(result.problems.some((p) => p.kind === 'head_mismatch')).toBe(true);
  });

  it('canonical JSON does not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }));
  });
});
