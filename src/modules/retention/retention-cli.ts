/**
 * `havre retention`: the operator's view of the retention rules (PRV-4).
 *
 *   retention report                 for each rule: the oldest record under it (live query) against
 *                                    its period, and its last run; exit 3 when a rule is overdue or
 *                                    enabled without registered SQL
 *   retention run                    apply every enabled rule now (what the daily job does)
 *   retention run --as-of YYYY-MM-DD apply them as if it were that day: only on a disposable
 *                                    installation (HAVRE_ENV=test, or "disposable": true in
 *                                    havre.json), refused on a real one (exit 2)
 */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { badRequest } from '../../lib/errors.ts';
import type { RuleOutcome, RuleReport } from './index.ts';

/** Exit code when a rule is overdue, not registered, or failed. */
export const EXIT_RULES_BROKEN = 3;

function reportLine(r: RuleReport): string {
  const oldest = r.oldestAgeDays === null ? 'none left' : `oldest ${r.oldestAgeDays} d`;
  const last = r.lastRun ? `last run ${r.lastRun.finishedAt}${r.lastRun.simulated ? ` (simulated as of ${r.lastRun.asOf.slice(0, 10)})` : ''}: ${r.lastRun.status}, ${r.lastRun.affected} removed` : 'never ran';
  return `${r.status.toUpperCase().padEnd(14)} ${r.id.padEnd(24)} ${r.period.padEnd(10)} ${r.action.padEnd(9)} ${oldest.padEnd(16)} ${last}`;
}

function outcomeLine(o: RuleOutcome): string {
  const age = o.oldestRemainingSeconds === null ? 'none left' : `oldest left ${(o.oldestRemainingSeconds / 86_400).toFixed(1)} d`;
  return `${o.ruleId.padEnd(24)} ${o.status.padEnd(14)} ${String(o.affected).padStart(9)} removed in ${o.batches} batch(es), ${age}${o.error ? ` (${o.error})` : ''}`;
}

/** A `YYYY-MM-DD` date as midnight UTC; anything else is a 400. */
export function parseAsOf(value: string): Date {
  const d = new Date(`${value}T00:00:00Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(d.getTime()) || d.toISOString().slice(0, 10) !== value) throw badRequest('invalid_option', '--as-of takes a date, YYYY-MM-DD');
  return d;
}

export function registerRetentionCommands(program: Command, run: CliRunner): void {
  const retention = program.command('retention').description('retention rules (PRV-4): report the proof per rule, run the rules');

  retention
    .command('report')
    .description('for each rule: the oldest record still under it (a live query) against its period, and when the rule last ran')
    .action(() =>
      run(['retention'], async ({ modules, core, print }) => {
        const report = await modules.retention.report(core.clock.now());
        print(report, (r) => [`retention rules at ${r.at}:`, ...r.rules.map(reportLine), r.ok ? 'every enforced rule holds' : 'SOME RULES DO NOT HOLD'].join('\n'));
        if (!report.ok) process.exitCode = EXIT_RULES_BROKEN;
      }),
    );

  retention
    .command('run')
    .description('apply every enabled rule now, in bounded batches, with evidence; --as-of only on a disposable installation')
    .option('--as-of <date>', 'simulate this day (YYYY-MM-DD): deletes for real what is past its period then; disposable installations only')
    .action((opts: { asOf?: string }) =>
      run(['retention'], async ({ modules, core, print }) => {
        const result = opts.asOf ? await modules.retention.simulate(parseAsOf(opts.asOf)) : await modules.retention.run(core.clock.now());
        print(result, (r) => [`retention run ${r.runId}${opts.asOf ? ` (simulated as of ${opts.asOf})` : ''}:`, ...r.outcomes.map(outcomeLine)].join('\n'));
        if (result.outcomes.some((o) => o.status !== 'ok')) process.exitCode = EXIT_RULES_BROKEN;
      }),
    );
}
