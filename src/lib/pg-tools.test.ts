import { describe, expect, it } from 'vitest';
import { checkPgTools } from './pg-tools.ts';

describe('PostgreSQL client tools', () => {
  it('finds pg_dump and pg_restore fit for the embedded PostgreSQL 15 servers', async () => {
    const check = await checkPgTools(15);
    expect(check).toEqual({ ok: true, message: expect.stringMatching(/^pg_dump 1\d and pg_restore 1\d fit PostgreSQL 15$/) });
  });

  it('says what to install when the tools are older than the servers', async () => {
    const check = await checkPgTools(99);
    expect(check.ok).toBe(false);
    expect(check.message).toContain('apt-get install postgresql-client-99');
  });
});
