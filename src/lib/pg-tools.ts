/**
 * The PostgreSQL client tools Havre relies on (pg_dump/pg_restore for backups): pg_dump cannot
 * dump a server newer than itself. Checked at start (with the command that fixes a mismatch) and
 * when a database server is registered, instead of failing at the first nightly backup.
 */
import { execFile } from 'node:child_process';

export interface ToolCheck {
  ok: boolean;
  message: string;
}

const majors = new Map<string, Promise<number | null>>();

/** Major version of a local PostgreSQL tool (`pg_dump`, `pg_restore`), or null when missing; asked once per process. */
export function localToolMajor(tool: 'pg_dump' | 'pg_restore'): Promise<number | null> {
  let known = majors.get(tool);
  if (!known) {
    known = new Promise((resolve) => {
      execFile(tool, ['--version'], { timeout: 5000 }, (err, stdout) => {
        if (err) return resolve(null);
        const m = /(\d+)(?:\.\d+)?/.exec(stdout);
        resolve(m ? Number(m[1]) : null);
      });
    });
    majors.set(tool, known);
  }
  return known;
}

/** `serverMajor`: the major version of the newest tenant database server. */
export async function checkPgTools(serverMajor: number): Promise<ToolCheck> {
  const [dump, restore] = await Promise.all([localToolMajor('pg_dump'), localToolMajor('pg_restore')]);
  if (dump === null || restore === null) {
    return { ok: false, message: `pg_dump/pg_restore not found: backups will not run. Install them with: apt-get install postgresql-client-${serverMajor}` };
  }
  if (dump < serverMajor || restore < serverMajor) {
    return { ok: false, message: `pg_dump ${dump} cannot back up PostgreSQL ${serverMajor} servers. Install: apt-get install postgresql-client-${serverMajor}` };
  }
  return { ok: true, message: `pg_dump ${dump} and pg_restore ${restore} fit PostgreSQL ${serverMajor}` };
}
