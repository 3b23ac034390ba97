/**
 * `havre backup`: the operator's tools for backups (BKP-1..5), acting as `cli`.
 *
 *   backup run --tenant <id> | --due     take backups now (one tenant, or the schedule's due ones)
 *   backup list --tenant <id>            every backup of a tenant, newest first
 *   backup verify [--backup <id>]        verify pending backups in a scratch database (BKP-4)
 *   backup download <id> --out --reason  the downloadable archive, written on this server
 *   backup restore <id> [--in-place]     restore into a new tenant, or in place
 *   backup prune [--tenant <id>]         apply retention (BKP-2)
 *
 * Exit codes (as `havre rollout`): 0 when everything succeeded, 3 when some backups failed (or
 * were incomplete, or failed verification), 2 for a bad request, 1 for other errors.
 */
import { createWriteStream } from 'node:fs';
import { access, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import type { BackupsModule } from './index.ts';
import { backupLine, presentBackup, presentRestore } from './backups-presenters.ts';
import type { BackupRow } from './backups-repo.ts';
import type { BackupActor } from './backups-service.ts';

const CLI: BackupActor = { type: 'cli' };
/** Exit code when some backups failed, were incomplete, or failed verification. */
export const EXIT_SOME_FAILED = 3;

function megabytes(bytes: number | string | null): string {
  return bytes === null ? '-' : `${(Number(bytes) / 1024 / 1024).toFixed(1)} MB`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

interface RunResult {
  tenantId: string;
  backupId: string | null;
  state: 'complete' | 'incomplete' | 'failed';
  sizeBytes: number | null;
  seconds: number;
  error: string | null;
}

/** `[3/10] <tenant> complete 12.3 MB in 2.1 s` */
function runLine(r: RunResult, index: number, total: number): string {
  const head = `[${index}/${total}] ${r.tenantId} ${r.state}`;
  const size = r.sizeBytes === null ? '' : ` ${megabytes(r.sizeBytes)}`;
  return `${head}${size} in ${seconds(r.seconds * 1000)}${r.error ? `: ${r.error}` : ''}`;
}

async function takeOne(backups: BackupsModule, tenantId: string, trigger: 'on_demand' | 'scheduled', catchErrors: boolean): Promise<RunResult> {
  const started = Date.now();
  try {
    const row = await backups.service.take(tenantId, { trigger, actor: CLI });
    const state = row.state === 'complete' || row.state === 'incomplete' ? row.state : 'failed';
    return { tenantId, backupId: row.id, state, sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes), seconds: (Date.now() - started) / 1000, error: row.error };
  } catch (err) {
    if (!catchErrors) throw err;
    return { tenantId, backupId: null, state: 'failed', sizeBytes: null, seconds: (Date.now() - started) / 1000, error: (err as Error)?.message ?? String(err) };
  }
}

async function completeBackup(backups: BackupsModule, id: string): Promise<BackupRow> {
  const row = await backups.repo.get(id);
  if (!row) throw notFound('backup_not_found', `No backup ${id}.`);
  if (row.state !== 'complete') throw conflict('backup_not_complete', `Backup ${id} is ${row.state}, not complete.`);
  return row;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

export function registerBackupCommands(program: Command, run: CliRunner): void {
  const backup = program.command('backup').description('backups of tenants (BKP-1..5): take, list, verify, download, restore, prune');

  backup
    .command('run')
    .description('take backups now: of one tenant (on demand), or of every tenant the daily schedule says is due')
    .option('--tenant <id>', 'back up this tenant now')
    .option('--due', 'back up every tenant due for its scheduled backup')
    .action((opts: { tenant?: string; due?: boolean }) =>
      run(['backups', 'fleet'], async ({ modules, core, say, print }) => {
        if (Boolean(opts.tenant) === Boolean(opts.due)) throw badRequest('invalid_option', 'give either --tenant <id> or --due');
        const { backups } = modules;
        try {
          const tenants = opts.tenant ? [opts.tenant] : await backups.service.dueTenants(core.clock.now());
          if (tenants.length === 0) {
            print([] as RunResult[], () => 'no tenant is due for its backup');
            return;
          }
          const results: RunResult[] = [];
          for (const [i, tenantId] of tenants.entries()) {
            const r = await takeOne(backups, tenantId, opts.tenant ? 'on_demand' : 'scheduled', !opts.tenant);
            results.push(r);
            say(runLine(r, i + 1, tenants.length));
          }
          const failed = results.filter((r) => r.state !== 'complete');
          print(results, () => (failed.length === 0 ? `${results.length} backup(s) complete` : `${failed.length} of ${results.length} backup(s) failed or incomplete: ${failed.map((f) => f.tenantId).join(', ')}`));
          if (failed.length > 0) process.exitCode = EXIT_SOME_FAILED;
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  backup
    .command('list')
    .description('every backup of a tenant (all states), newest first')
    .requiredOption('--tenant <id>', 'tenant id')
    .action((opts: { tenant: string }) =>
      run(['backups'], async ({ modules, print }) => {
        const { repo } = modules.backups;
        const rows = await repo.listForTenant(opts.tenant);
        const withCopies = await Promise.all(rows.map(async (b) => ({ b, copies: await repo.copies(b.id) })));
        print(
          withCopies.map(({ b, copies }) => presentBackup(b, copies)),
          () => (withCopies.length === 0 ? `no backups of tenant ${opts.tenant}` : withCopies.map(({ b, copies }) => backupLine(b, copies)).join('\n')),
        );
      }),
    );

  backup
    .command('verify')
    .description('verify backups by restoring them into a scratch database and comparing with their manifest (BKP-4): every complete backup not verified yet, or one')
    .option('--backup <id>', 'verify this backup only (the result is printed, not recorded)')
    .action((opts: { backup?: string }) =>
      run(['backups'], async ({ modules, say, print }) => {
        const { backups } = modules;
        if (opts.backup) {
          const row = await completeBackup(backups, opts.backup);
          const outcome = await backups.service.verify(row);
          print({ backupId: row.id, tenantId: row.tenant_id, ...outcome }, (o) => (o.ok ? `backup ${o.backupId} verified` : [`backup ${o.backupId} FAILED verification:`, ...o.problems.map((p) => `  ${p}`)].join('\n')));
          if (!outcome.ok) process.exitCode = EXIT_SOME_FAILED;
          return;
        }
        // verifyNext() says only that it verified one; which one and how is read back from the rows it leased.
        const pending = await backups.db
          .selectFrom('backups')
          .select('id')
          .where('state', '=', 'complete')
          .where((w) => w.or([w('verification', '=', 'pending'), w.and([w('verification', '=', 'running'), w('verification_lease_until', '<', new Date())])]))
          .execute();
        const ids = pending.map((p) => p.id);
        const reported = new Set<string>();
        const results: { backupId: string; tenantId: string; ok: boolean; error: string | null }[] = [];
        let done = 0;
        while (await backups.service.verifyNext()) {
          done++;
          const finished = ids.length
            ? await backups.db.selectFrom('backups').select(['id', 'tenant_id', 'verification', 'verification_error']).where('id', 'in', ids).where('verification', 'in', ['verified', 'failed']).execute()
            : [];
          const fresh = finished.filter((f) => !reported.has(f.id));
          for (const f of fresh) {
            reported.add(f.id);
            results.push({ backupId: f.id, tenantId: f.tenant_id, ok: f.verification === 'verified', error: f.verification_error });
            say(`[${results.length}/${Math.max(ids.length, done)}] ${f.id} (tenant ${f.tenant_id}) ${f.verification === 'verified' ? 'verified' : `FAILED: ${f.verification_error ?? ''}`}`);
          }
          if (fresh.length === 0) say(`[${done}] verified a backup completed since this command started`);
        }
        const failed = results.filter((r) => !r.ok);
        print(results, () => (done === 0 ? 'no backup is waiting for verification' : `${done} backup(s) checked, ${failed.length} failed`));
        if (failed.length > 0) process.exitCode = EXIT_SOME_FAILED;
      }),
    );

  backup
    .command('download')
    .summary("write a backup's archive to a file on this server (disaster recovery; needs the master key)")
    .description(
      "write a complete backup's archive (manifest.json, database.pgdump.gz — database.pgdump for a havre-backup/1 backup —, attachments.tar, README.txt — the same as the customer's download) to a file. " +
        'This is the disaster-recovery path on the Havre server itself: it decrypts with the master key of this installation, so it runs only where that key is. ' +
        'The file holds the customer data in clear: keep it safe and delete it after use. Audited with the reason.',
    )
    .argument('<backupId>', 'backup id')
    .requiredOption('--out <file>', 'file to write (never overwritten)')
    .requiredOption('--reason <text>', 'why (recorded in the audit log)')
    .action((backupId: string, opts: { out: string; reason: string }) =>
      run(['backups'], async ({ modules, core, print }) => {
        const { backups } = modules;
        const reason = opts.reason.trim();
        if (!reason) throw badRequest('invalid_option', '--reason must say why');
        const out = path.resolve(opts.out);
        if (await exists(out)) throw badRequest('file_exists', `${out} exists; it is never overwritten`);
        const row = await completeBackup(backups, backupId);
        // Imported here: every `havre` command registers this one, few run it.
        const { downloadArchive } = await import('./backup-download.ts');
        const archive = await downloadArchive(backups.service.reader, row, await backups.repo.copies(row.id), 'en');
        await core.audit.record({ actorType: 'cli', action: 'backup.downloaded', subjectType: 'backup', subjectId: row.id, data: { tenantId: row.tenant_id, reason } });
        const partial = `${out}.partial`;
        try {
          await pipeline(archive, createWriteStream(partial, { mode: 0o600 }));
          if (await exists(out)) throw badRequest('file_exists', `${out} appeared while writing; it is never overwritten (the archive is in ${partial})`);
          await rename(partial, out);
        } catch (err) {
          if (!(err instanceof Error && 'code' in err && err.code === 'file_exists')) await rm(partial, { force: true });
          throw err;
        }
        const bytes = (await stat(out)).size;
        print({ backupId: row.id, tenantId: row.tenant_id, file: out, bytes }, (v) => `wrote ${v.bytes} bytes (${megabytes(v.bytes)}) to ${v.file}`);
      }),
    );

  backup
    .command('restore')
    .description('restore a complete backup: into a new tenant of the same customer (default), or in place after a safety backup')
    .argument('<backupId>', 'backup id')
    .option('--in-place', "replace the tenant's current data (a safety backup is taken first)")
    .option('--confirm <name>', 'with --in-place: the tenant name, typed')
    .action((backupId: string, opts: { inPlace?: boolean; confirm?: string }) =>
      run(['backups', 'fleet'], async ({ modules, print }) => {
        const { backups } = modules;
        if (opts.confirm !== undefined && !opts.inPlace) throw badRequest('invalid_option', '--confirm goes with --in-place');
        try {
          const row = await completeBackup(backups, backupId);
          const mode = opts.inPlace ? 'in-place' : 'new';
          const restored = await backups.restore.restore(row.tenant_id, { backupId: row.id, mode, ...(opts.confirm !== undefined && { confirm: opts.confirm }), actor: CLI });
          print(presentRestore(restored), (r) =>
            r.mode === 'new' ? `restored backup ${r.backupId} into new tenant ${r.tenantId}` : `restored backup ${r.backupId} in place into tenant ${r.tenantId} (safety backup ${r.safetyBackupId})`,
          );
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  backup
    .command('prune')
    .description('apply retention (BKP-2) to one tenant or to every tenant with backups: keepers stay locked, the others are deleted once their lock allows')
    .option('--tenant <id>', 'only this tenant')
    .action((opts: { tenant?: string }) =>
      run(['backups'], async ({ modules, say, print }) => {
        const { backups } = modules;
        const tenants = opts.tenant ? [opts.tenant] : await backups.repo.tenantsWithBackups();
        const results: { tenantId: string; kept: number; pruned: number; waiting: number; error?: string }[] = [];
        for (const tenantId of tenants) {
          try {
            results.push({ tenantId, ...(await backups.service.applyRetention(tenantId)) });
          } catch (err) {
            if (opts.tenant) throw err;
            results.push({ tenantId, kept: 0, pruned: 0, waiting: 0, error: (err as Error)?.message ?? String(err) });
          }
          const r = results.at(-1)!;
          say(r.error ? `${tenantId} FAILED: ${r.error}` : `${tenantId} kept ${r.kept}, pruned ${r.pruned}, waiting ${r.waiting}`);
        }
        const failed = results.filter((r) => r.error);
        print(results, (rs) => (rs.length === 0 ? 'no tenant has backups' : `retention applied to ${rs.length - failed.length} tenant(s)${failed.length ? `, failed for ${failed.length}` : ''}`));
        if (failed.length > 0) process.exitCode = EXIT_SOME_FAILED;
      }),
    );
}
