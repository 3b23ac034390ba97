/**
 * Imported first by `src/cli/havre.ts`: the memory setting of a one-shot command's process.
 *
 * Why: V8 lets its young generation grow to 16 MiB semi-spaces (some 48 MiB of resident memory)
 * when a process allocates fast, as a backup or an export does: gigabytes of Buffers pass through
 * it. That growth buys a server's request throughput and nothing to a command that streams bytes
 * and exits, and it alone would put `havre backup run` over its 150 MB (bench/results/backup.md).
 * With a growth factor of 1 the young generation keeps its starting size; the stream's Buffers are
 * collected young all the same (src/lib/buffer-release.ts). `havre start` (the server) keeps V8's
 * defaults.
 */
import v8 from 'node:v8';

/** True for `havre start` (the server, which runs until stopped): its command is the first argument that is not an option. */
export function isLongRunning(argv: readonly string[]): boolean {
  return argv.slice(2).find((arg) => !arg.startsWith('-')) === 'start';
}

if (!isLongRunning(process.argv)) v8.setFlagsFromString('--semi-space-growth-factor=1');
