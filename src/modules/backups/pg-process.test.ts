import { execFileSync } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childProcessesNamed, collectBytes } from '../../../test/processes.ts';
import { inject } from 'vitest';
import { toolSearchPath } from '../../config/config.ts';
import { pgDumpGzip } from './pg-process.ts';
import { databaseIsGzip } from './backup-writer.ts';
import { useIgzipCommand } from '../../lib/igzip.ts';

// A database of its own on the fr test server, as its admin.
const admin = inject('regionServers')[0]!.adminUrl;
const dbName = `pgproc_${process.pid}_${Date.now() % 100000}`;
const dbUrl = admin.replace(/\/[^/]*$/, `/${dbName}`);

async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  await sql(admin, `CREATE DATABASE ${dbName}`);
  await sql(dbUrl, `CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes SELECT i, repeat('note ' || i, 20) FROM generate_series(1, 20000) i`);
});
afterAll(async () => {
  await sql(admin, `DROP DATABASE IF EXISTS ${dbName}`);
});

describe('pgDumpGzip (pg_dump piped into igzip, no byte through Node)', () => {
  it('[BKP-3] gives a gzip stream whose content is a custom-format archive that stock pg_restore lists', async () => {
    const dump = pgDumpGzip({ connectionString: dbUrl }, { level: 1 });
    const gz = await collectBytes(dump.stdout as AsyncIterable<Buffer>);
    await dump.done;
    const archive = zlib.gunzipSync(gz);
    expect(archive.subarray(0, 5).toString()).toBe('PGDMP');
    expect(gz.length).toBeLessThan(archive.length / 3);
    const file = path.join(await mkdtemp(path.join(inject('testRoot'), 'pgdump-gzip-')), 'database.pgdump');
    await writeFile(file, archive);
    const listing = execFileSync('pg_restore', ['--list', file], { env: { PATH: toolSearchPath() } }).toString();
    expect(listing).toMatch(/TABLE DATA public notes/);
  });

  it('[BKP-3] fails with pg_dump\'s own message when pg_dump fails, though igzip ends its stream cleanly', async () => {
    const dump = pgDumpGzip({ connectionString: admin.replace(/\/[^/]*$/, '/no_such_database') }, { level: 1 });
    const gz = await collectBytes(dump.stdout as AsyncIterable<Buffer>);
    expect(zlib.gunzipSync(gz).length).toBe(0); // a valid, empty gzip: only `done` tells the failure
    await expect(dump.done).rejects.toThrow(/pg_dump failed.*no_such_database/s);
  });

  it('[BKP-3] when igzip fails, its failure comes first (pg_dump then dies of SIGPIPE)', async () => {
    useIgzipCommand('false');
    try {
      const dump = pgDumpGzip({ connectionString: dbUrl }, { level: 1 });
      await collectBytes(dump.stdout as AsyncIterable<Buffer>);
      await expect(dump.done).rejects.toThrow(/^igzip failed \(exit 1\)/);
    } finally {
      useIgzipCommand('igzip');
    }
  });

  it('[BKP-4] a backup of a format this Havre does not know is refused, never guessed', () => {
    expect(databaseIsGzip({ format: 'havre-backup/2' })).toBe(true);
    expect(databaseIsGzip({ format: 'havre-backup/1' })).toBe(false);
    expect(() => databaseIsGzip({ format: 'havre-backup/3' })).toThrow(/unknown to this version of Havre/);
  });

  it('kill() stops both processes', async () => {
    const dump = pgDumpGzip({ connectionString: dbUrl }, { level: 1 });
    dump.kill();
    await expect(dump.done).rejects.toThrow(/pg_dump failed \(SIGKILL\)/);
    await sleep(50);
    expect(childProcessesNamed('igzip')).toEqual([]);
  });
});
