/** Small helpers for tests of code that runs child processes or yields byte streams. */
import { execFileSync } from 'node:child_process';

/** Every chunk of `stream`, joined. */
export async function collectBytes(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
}

/** PIDs of running processes named `name` whose parent is this process (none left = cleaned up). */
export function childProcessesNamed(name: string): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}
