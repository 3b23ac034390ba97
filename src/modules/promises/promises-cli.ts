/** `havre promises`: each promise with the tests that prove it. */
import path from 'node:path';
import type { Command } from 'commander';
import { PROMISES } from './catalog.ts';
import { findPromiseTests } from './promise-tests.ts';

export function registerPromisesCommand(program: Command): void {
  program
    .command('promises')
    .description('list every promise with the automated tests that prove it')
    .option('--missing', 'only promises without a test yet')
    .action(async (opts: { missing?: boolean }) => {
      const root = path.resolve(import.meta.dirname, '../../..');
      const found = await findPromiseTests(root);
      const rows = PROMISES.map((p) => ({ ...p, tests: found.get(p.id) ?? [] })).filter((p) => !opts.missing || p.tests.length === 0);
      if (program.opts<{ json?: boolean }>().json) {
        process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        return;
      }
      for (const p of rows) {
        const status = p.tests.length ? `tested by ${p.tests.length}` : 'no test yet';
        process.stdout.write(`${p.id.padEnd(7)} ${status.padEnd(18)} ${p.title}\n`);
        for (const t of p.tests) process.stdout.write(`          ${t.file}: ${t.name}\n`);
      }
      const proven = PROMISES.filter((p) => (found.get(p.id) ?? []).length > 0).length;
      process.stdout.write(`\n${proven} of ${PROMISES.length} promises have at least one [ID] test (a count, not a verdict: a promise may be partly delivered).\n`);
    });
}
