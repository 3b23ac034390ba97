/**
 * Intel ISA-L's `igzip` command (Debian package `isal`): gzip several times faster than zlib at
 * its low levels, and a little smaller (bench/results/export.md, backup.md). Havre uses it where
 * compression would otherwise hold a pipeline back on a small machine — export archives
 * (src/lib/zip/igzip-deflate.ts) and backups (src/modules/backups/pg-process.ts) — and falls back
 * to zlib (or pg_dump's own compression) where it is not installed.
 */
import { spawnSync } from 'node:child_process';

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

