/**
 * `havre export` and `havre import` (EXP-1..3): the operator's (or a self-hosting customer's)
 * tools, acting as `cli`.
 *
 *   export --tenant <id> [--out <file>]   build an export now, progress per table, copy it to --out
 *   import --tenant <id> <archive>        import an export archive into a new, empty tenant
 *
 * Exit codes as the other groups: 0 done, 2 refused (bad request, conflict), 1 other errors.
 */
import { copyFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { AppError } from '../../lib/errors.ts';
import type { ExportProgress } from './export-writer.ts';
import { presentExport } from './portability-presenters.ts';
import type { PortabilityActor } from './export-service.ts';

const CLI: PortabilityActor = { type: 'cli' };

/** `[csv 3/24] 1,234 of 9,876 rows` — one line per table file, then per phase. */
function progressLine(p: ExportProgress): string {
  return `[${p.phase} ${p.tablesDone}/${p.tablesTotal}] ${p.rowsWritten.toLocaleString('en')} of ${p.rowsTotal.toLocaleString('en')} rows`;
}

export function registerPortabilityCommands(program: Command, run: CliRunner): void {
  program
    .command('export')
    .description('export a whole tenant (CSV, JSON, XML, XLSX, attachments, manifest) into one zip archive (EXP-1)')
    .requiredOption('--tenant <id>', 'tenant id')
    .option('--out <file>', 'copy the archive here (default: print where it is on this server)')
    .option('--locale <fr|en>', 'language of the README in the archive', 'fr')
    .action((opts: { tenant: string; out?: string; locale: string }) =>
      run(async ({ modules, say, print }) => {
        const { exports } = modules.portability;
        let lastTables = -1;
        let lastPhase = '';
        const locale = opts.locale === 'en' ? 'en' : 'fr';
        try {
          const { done } = await exports.start(opts.tenant, {
            requestedBy: null,
            locale,
            actor: CLI,
            onProgress: (p) => {
              if (p.tablesDone === lastTables && p.phase === lastPhase) return;
              lastTables = p.tablesDone;
              lastPhase = p.phase;
              say(progressLine(p));
            },
          });
          const row = await done;
          if (row.state !== 'complete') throw new AppError(500, 'export_failed', `the export failed: ${row.error ?? 'unknown error'}`);
          let file = exports.archivePath(row);
          if (opts.out) {
            // Copied under a temporary name first: a partial copy never looks complete.
            const out = path.resolve(opts.out);
            await copyFile(file, `${out}.partial`);
            await rename(`${out}.partial`, out).catch(async (err: unknown) => {
              await rm(`${out}.partial`, { force: true });
              throw err;
            });
            file = out;
          }
          print({ ...presentExport(row), file }, (v) => `export ${v.id} complete: ${file} (${v.sizeBytes} bytes, sha256 ${v.sha256})`);
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  program
    .command('import')
    .description('import an export archive into a new, empty tenant: same ids, same values, all or nothing (EXP-3)')
    .requiredOption('--tenant <id>', 'the target tenant (new, without records)')
    .argument('<archive>', 'an archive made by `havre export` or downloaded from Havre')
    .action((archive: string, opts: { tenant: string }) =>
      run(async ({ modules, say, print }) => {
        try {
          const result = await modules.portability.importArchive(opts.tenant, path.resolve(archive), CLI, (table, rows) => say(`${table}: ${rows} rows`));
          print(result, (r) => `imported ${r.tables.reduce((n, t) => n + t.rows, 0)} rows in ${r.tables.length} tables and ${r.attachments} attachments`);
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );
}
