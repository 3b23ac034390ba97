import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { canonicalJson, withPersonal } from './audit-service.ts';

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

  it('[ACC-5] an entry\'s IP and e-mail live beside the chain: readers get them back, erasing them keeps the chain valid, changing them is detected', async () => {
    const person = '8d7d0c4e-1f0a-4b53-9d8e-5b2f3d0a9c11';
    const first = await ctx.core.audit.record({ actorType: 'user', actorId: person, action: 'auth.sign_in_failed', subjectType: 'user', subjectId: person, ip: '192.0.2.7', data: { email: 'Anne@Example.test', reason: 'password' } });
    const second = await ctx.core.audit.record({ actorType: 'system', action: 'member.invited', subjectType: 'invitation', subjectId: 'inv-1', data: { email: 'anne@example.test', role: 'collaborator' } });
    const other = await ctx.core.audit.record({ actorType: 'user', actorId: 'someone-else', action: 'auth.sign_in', ip: '198.51.100.1' });
    const row = await ctx.core.db.selectFrom('audit_log').selectAll().where('seq', '=', first.seq).executeTakeFirstOrThrow();
    // The chained row: no IP, no address, a digest.
    expect(row).toMatchObject({ ip: null, data: { reason: 'password' }, personal_digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(JSON.stringify(row)).not.toMatch(/192\.0\.2\.7|example\.test/i);
    const personal = await ctx.core.audit.personalOf([first.seq, second.seq]);
    expect(withPersonal(row, personal)).toMatchObject({ ip: '192.0.2.7', data: { email: 'Anne@Example.test', reason: 'password' } });
    // (The log of this file was tampered with by the test above: only these entries are looked at.)
    const mine = [first.seq, second.seq, other.seq];
    const problemsOfMine = async () => (await ctx.core.audit.verify()).problems.filter((p) => mine.includes(p.seq));
    expect(await problemsOfMine()).toEqual([]);

    // A changed address no longer matches the digest in the chain.
    await asSuperuser((c) => c.query(`UPDATE audit_personal SET ip = '203.0.113.9' WHERE seq = $1`, [first.seq]));
    expect(await problemsOfMine()).toEqual([{ seq: first.seq, kind: 'altered', detail: 'its personal data does not match the digest in the chain' }]);

    // Erasure: by the person's id and by the address (any case); someone else's stays; the chain verifies.
    expect(await ctx.core.audit.erasePersonal({ personId: person, email: 'ANNE@example.test' })).toBe(2);
    expect((await ctx.core.audit.personalOf(mine)).size).toBe(1);
    expect(await problemsOfMine()).toEqual([]);
    const erased = await ctx.core.db.selectFrom('audit_log').selectAll().where('seq', '=', first.seq).executeTakeFirstOrThrow();
    expect(withPersonal(erased, new Map())).toMatchObject({ action: 'auth.sign_in_failed', actor_id: person, ip: null, data: { reason: 'password' } });
  });

  it('canonical JSON does not depend on key order', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } })).toBe(canonicalJson({ a: { c: null, d: [1, { y: 2, z: 1 }] }, b: 1 }));
  });
});
