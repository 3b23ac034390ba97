/**
 * `havre rollout`: roll the workspace schema out to every tenant database (TEN-6), and the SEC-5
 * tools: `rollout status`, `rollout report <version>`, `rollout defer`.
 *
 * `havre rollout` resumes the unfinished rollout of the same target when there is one (after a
 * crash or Ctrl-C: leases of the dead run expire after a minute, then its tenants are taken
 * again), else creates one. Exit codes: 0 when every tenant is done (or waits for its maintenance
 * notice period: the running Havre resumes by itself), 3 when tenants failed (listed), 2 for a
 * bad request, 1 for other errors.
 */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { startOfParisDay } from '../../lib/business-days.ts';
import { badRequest } from '../../lib/errors.ts';
import { outcomeText, presentDeferral, presentDetails, presentReport, presentRollout, progressLine, reportText, rolloutTable } from './rollouts-presenters.ts';
import type { RolloutActor } from './rollouts-service.ts';

const CLI: RolloutActor = { type: 'cli' };
/** Exit code when tenants failed. */
export const EXIT_TENANTS_FAILED = 3;

function wholeNumber(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw badRequest('invalid_option', `${name} takes a whole number`);
  return n;
}

function releaseDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  // A bare date is the start of that day in Paris.
  const d = /^\d{4}-\d{2}-\d{2}$/.test(value) ? startOfParisDay(value) : new Date(value);
  if (Number.isNaN(d.getTime())) throw badRequest('invalid_option', '--released-at takes a date (YYYY-MM-DD) or an ISO date-time');
  return d;
}

interface RolloutOptions {
  batch?: string;
  concurrency?: string;
  security?: boolean;
  target?: string;
  releasedAt?: string;
}

export function registerRolloutCommands(program: Command, run: CliRunner): void {
  const rollout = program
    .command('rollout')
    .description('roll the workspace schema out to every tenant database, in batches (TEN-6); resumes an unfinished rollout of the same version')
    .option('--target <version>', 'schema version to reach (default: the latest this Havre ships)')
    .option('--batch <n>', 'tenants per batch (default: workspace.rollout.batchSize)')
    .option('--concurrency <n>', 'tenants upgraded at once (default: workspace.rollout.concurrency)')
    .option('--security', 'the release is a security fix: every tenant within 5 business days, except written deferrals (SEC-5)')
    .option('--released-at <date>', 'when the security fix was released, if before this rollout (SEC-5 clock)')
    .action((opts: RolloutOptions) =>
      run(['rollouts', 'fleet'], async ({ modules, print, say }) => {
        const { service } = modules.rollouts;
        try {
          const batchSize = wholeNumber('--batch', opts.batch);
          const concurrency = wholeNumber('--concurrency', opts.concurrency);
          const target = wholeNumber('--target', opts.target);
          const releasedAt = releaseDate(opts.releasedAt);
          const created = await service.create({
            ...(target !== undefined && { target }),
            ...(batchSize !== undefined && { batchSize }),
            ...(concurrency !== undefined && { concurrency }),
            ...(opts.security && { security: true }),
            ...(releasedAt && { releasedAt }),
            actor: CLI,
          });
          if (!created.rollout) {
            print({ targetVersion: created.release.version, nothingToDo: true }, (v) => `nothing to do: every tenant database is at version ${v.targetVersion} or above`);
            return;
          }
          const r = created.rollout;
          say(created.created ? `rollout ${r.id} to version ${r.target_version} created${r.security ? ' (security fix)' : ''}` : `resuming rollout ${r.id} to version ${r.target_version}`);
          if (created.created && r.notices_sent > 0) say(`maintenance notices sent to ${r.notices_sent} owner(s) and administrator(s); their tenants are not updated before ${r.notice_until?.toISOString()}`);
          const outcome = await service.run(r.id, { ...(batchSize !== undefined && { batchSize }), ...(concurrency !== undefined && { concurrency }), onProgress: (p) => say(progressLine(p)) });
          print({ ...presentDetails(await service.progress(r.id)), status: outcome.status, waitingUntil: outcome.waitingUntil?.toISOString() ?? null }, () => outcomeText(outcome));
          if (outcome.counts.failed > 0) process.exitCode = EXIT_TENANTS_FAILED;
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  rollout
    .command('status')
    .description('running and recent rollouts with their progress, or one rollout with its failed and deferred tenants')
    .argument('[id]', 'a rollout id')
    .action((id: string | undefined) =>
      run(['rollouts'], async ({ modules, print }) => {
        const { service } = modules.rollouts;
        if (id) {
          print(presentDetails(await service.progress(id)), (d) =>
            [
              rolloutTable([d]),
              ...d.failures.map((f) => `  FAILED ${f.tenantId ?? f.tenantDatabaseId} ${f.tenantName ?? ''} after ${f.attempts} attempt(s): ${f.error ?? '-'}`),
              ...d.deferred.map((f) => `  deferred ${f.tenantId ?? f.tenantDatabaseId} ${f.tenantName ?? ''}`),
            ].join('\n'),
          );
          return;
        }
        print((await service.list({ limit: 20 })).map((x) => presentRollout(x.rollout, x.counts)), rolloutTable);
      }),
    );

  rollout
    .command('report')
    .description('SEC-5 report of a release: per tenant, updated when, against the 5-business-day deadline')
    .argument('<version>', 'release (schema) version')
    .action((version: string) =>
      run(['rollouts'], async ({ modules, print }) => {
        print(presentReport(await modules.rollouts.security.report(wholeNumber('<version>', version)!)), reportText);
      }),
    );

  rollout
    .command('defer')
    .description("record a customer's written request to defer a security release for one tenant (SEC-5)")
    .requiredOption('--tenant <id>', 'tenant id')
    .requiredOption('--version <v>', 'release version the request covers')
    .requiredOption('--reference <text>', 'reference or summary of the written request')
    .option('--until <date>', 'last day (Paris, YYYY-MM-DD) the request covers (default: until further notice)')
    .action((opts: { tenant: string; version: string; reference: string; until?: string }) =>
      run(['rollouts'], async ({ modules, print }) => {
        const row = await modules.rollouts.security.recordDeferral({ tenantId: opts.tenant, version: wholeNumber('--version', opts.version)!, reference: opts.reference, until: opts.until ?? null, actor: CLI });
        print(presentDeferral(row), (d) => `recorded: tenant ${d.tenantId} defers version ${d.version}${d.until ? ` until ${d.until}` : ''} (${d.reference})`);
      }),
    );
}
