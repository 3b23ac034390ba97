/**
 * Checks the PostgreSQL client tools Havre relies on (pg_dump/pg_restore for backups): pg_dump
 * cannot dump a server newer than itself, and the embedded servers are PostgreSQL 15. A missing
 * or mismatched tool is reported at start with the command that fixes it, instead of failing at
 * the first nightly backup.
 */
import { execFile } from 'node:child_process';

export interface ToolCheck {
  ok: boolean;
  message: string;
}

function version(tool: string): Promise<number | null> {
  return new Promise((resolve) => {
    execFile(tool, ['--version'], { timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(null);
      const m = /(\d+)(?:\.\d+)?/.exec(stdout);
      resolve(m ? Number(m[1]) : null);
    });
  });
}

/** `serverMajor`: the major version of the newest tenant database server. */
export async function checkPgTools(serverMajor: number): Promise<ToolCheck> {
  const [dump, restore] = await Promise.all([version('pg_dump'), version('pg_restore')]);
  if (dump === null || restore === null) {
    return { ok: false, message: `pg_dump/pg_restore not found: backups will not run. Install them with: apt-get install postgresql-client-${serverMajor}` };
  }
  if (dump < serverMajor || restore < serverMajor) {
    return { ok: false, message: `pg_dump ${dump} cannot back up PostgreSQL ${serverMajor} servers. Install: apt-get install postgresql-client-${serverMajor}` };
  }
  return { ok: true, message: `pg_dump ${dump} and pg_restore ${restore} fit PostgreSQL ${serverMajor}` };
}
