/** Whitelisted views of backups and restores (API, CLI): never keys, object keys or errors with internals. */
import { z } from 'zod';
import type { BackupRow, CopyRow } from './backups-repo.ts';
import type { RestoreRow } from './backup-restore.ts';

export const backupView = z.object({
  id: z.string(),
  takenAt: z.string().nullable(),
  trigger: z.string(),
  state: z.string(),
  sizeBytes: z.number().nullable(),
  verification: z.enum(['pending', 'running', 'verified', 'failed']),
  verifiedAt: z.string().nullable(),
  locations: z.array(z.string()).describe('Locations holding a checked copy of every part'),
  keptUntil: z.string().describe('Locked (write-once) at least until then'),
});

export function presentBackup(b: BackupRow, copies: readonly CopyRow[]): z.infer<typeof backupView> {
  const locations = [...new Set(copies.map((c) => c.location))].filter((loc) => ['database', 'files', 'manifest'].every((part) => copies.some((c) => c.location === loc && c.part === part && c.state === 'checked')));
  return {
    id: b.id,
    takenAt: b.taken_at?.toISOString() ?? null,
    trigger: b.trigger,
    state: b.state,
    sizeBytes: b.size_bytes === null ? null : Number(b.size_bytes),
    verification: b.verification,
    verifiedAt: b.verified_at?.toISOString() ?? null,
    locations: locations.sort(),
    keptUntil: b.retain_until.toISOString(),
  };
}

export const restoreView = z.object({
  id: z.string(),
  backupId: z.string(),
  mode: z.enum(['new', 'in-place']),
  state: z.enum(['running', 'succeeded', 'failed']),
  tenantId: z.string().nullable().describe('The tenant holding the restored data'),
  safetyBackupId: z.string().nullable(),
  startedAt: z.string(),
  finishedAt: z.string().nullable(),
});

export function presentRestore(r: RestoreRow): z.infer<typeof restoreView> {
  return {
    id: r.id,
    backupId: r.backup_id,
    mode: r.mode,
    state: r.state,
    tenantId: r.result_tenant_id,
    safetyBackupId: r.safety_backup_id,
    startedAt: r.started_at.toISOString(),
    finishedAt: r.finished_at?.toISOString() ?? null,
  };
}

/** One line per backup for `havre backup list`. */
export function backupLine(b: BackupRow, copies: readonly CopyRow[]): string {
  const size = b.size_bytes === null ? '-' : `${(Number(b.size_bytes) / 1024 / 1024).toFixed(1)} MB`;
  const where = [...new Set(copies.filter((c) => c.state === 'checked').map((c) => c.location))].sort().join(',') || '-';
  return `${b.id}  ${(b.taken_at ?? b.started_at).toISOString()}  ${b.trigger.padEnd(11)} ${b.state.padEnd(10)} ${b.verification.padEnd(8)} ${size.padStart(10)}  ${where}${b.error ? `  (${b.error.slice(0, 120)})` : ''}`;
}
