/**
 * Intel ISA-L's `igzip` command (Debian package `isal`): gzip several times faster than zlib at
 * its low levels, and a little smaller (bench/results/export.md, backup.md). Havre uses it where
 * compression would otherwise hold a pipeline back on a small machine — export archives
 * (src/lib/zip/igzip-deflate.ts) and backups (src/modules/backups/pg-process.ts) — and falls back
 * to zlib (or pg_dump's own compression) where it is not installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';

let command = 'igzip';

/** The command run (default `igzip` on the PATH); tests point it elsewhere to prove the fallback. */
export function useIgzipCommand(cmd: string): void {
  command = cmd;
}

/** The command to run. */
export function igzipCommand(): string {
  return command;
}

const found = new Map<string, boolean>();

/** Whether `igzip` runs here (asked once per command, then remembered). */
export function igzipAvailable(): boolean {
  const cmd = command;
  let ok = found.get(cmd);
  if (ok === undefined) {
    ok = spawnSync(cmd, ['-V'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    found.set(cmd, ok);
  }
  return ok;
}

/** The ISA-L level (0–3) for a zlib-style level (1–9): 1 → 1, 2–5 → 2, 6–9 → 3. */
export function isalLevel(level: number): number {
  if (!Number.isInteger(level) || level < 1 || level > 9) throw new RangeError(`igzip deflate level must be an integer from 1 to 9, not ${level}`);
  return level === 1 ? 1 : level <= 5 ? 2 : 3;
}

/** A running igzip: the child, and its end (rejects with why: could not start, or exit status and stderr). */
export interface IgzipProcess {
  child: ChildProcess;
  done: Promise<void>;
}

/**
 * Starts `igzip -<level> -c -n` (compress stdin to stdout, no name or time in the header), its
 * stdin a pipe or `stdin` (another process's output end, see pgDumpGzip). Its stderr is kept
 * (bounded) for the error message. One place for both users: exports and backups.
 */
export function spawnIgzip(level: number, stdin: 'pipe' | Writable = 'pipe'): IgzipProcess {
  const child = spawn(command, [`-${isalLevel(level)}`, '-c', '-n'], { stdio: [stdin, 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (text: string) => {
    if (stderr.length < 2000) stderr += text;
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`igzip could not start: ${err.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`igzip failed (${signal ?? `exit ${code}`}): ${stderr.trim().slice(0, 500) || 'no message'}`))));
  });
  done.catch(() => {}); // the caller awaits it; an unobserved failure must not crash the process
  return { child, done };
}
