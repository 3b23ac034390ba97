/**
 * Telling the operator that a backup promise is at risk (BKP-3, BKP-4): a failed or incomplete
 * backup, a failed verification, a corrupt copy. Three channels, so that one being down does not
 * hide it: an e-mail to every staff administrator (FR/EN), a Prometheus counter, and an audit entry.
 * No customer data in any of them: ids, the location and the reason only.
 */
import { Counter, type Registry } from 'prom-client';
import type { Db } from '../../db/db.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { Mailer } from '../mail/mail-service.ts';

export type BackupAlertKind = 'backup_failed' | 'backup_incomplete' | 'verification_failed' | 'copy_corrupt';

const TITLES: Record<BackupAlertKind, { en: string; fr: string }> = {
  backup_failed: { en: 'A backup failed', fr: 'Une sauvegarde a échoué' },
  backup_incomplete: { en: 'A backup is missing a copy', fr: 'Une copie de sauvegarde manque' },
  verification_failed: { en: 'A backup failed its verification', fr: 'Une sauvegarde a échoué à la vérification' },
  copy_corrupt: { en: 'A stored backup copy is corrupt', fr: 'Une copie de sauvegarde stockée est corrompue' },
};

export interface BackupAlert {
  kind: BackupAlertKind;
  backupId: string;
  tenantId: string;
  customerId?: string | null;
  location?: string;
  reason: string;
}

export function createBackupAlerts(deps: { db: Db; mailer: Mailer; audit: AuditService; registry: Registry }) {
  const counter = new Counter({
    name: 'havre_backup_alerts_total',
    help: 'Backup problems reported to the operator, by kind (failed, incomplete, verification failed, corrupt copy).',
    labelNames: ['kind'] as const,
    registers: [deps.registry],
  });
  for (const kind of Object.keys(TITLES)) counter.inc({ kind }, 0);

  return {
    async raise(alert: BackupAlert): Promise<void> {
      counter.inc({ kind: alert.kind });
      await deps.db.transaction().execute(async (trx) => {
        await deps.audit.record(
          { actorType: 'system', action: `backup.${alert.kind}`, subjectType: 'backup', subjectId: alert.backupId, customerId: alert.customerId ?? null, data: { tenantId: alert.tenantId, reason: alert.reason.slice(0, 500), ...(alert.location && { location: alert.location }) } },
          trx,
        );
        const admins = await trx.selectFrom('users').select(['id', 'email', 'locale']).where('staff_role', '=', 'admin').execute();
        for (const admin of admins) {
          const fr = admin.locale === 'fr';
          const title = TITLES[alert.kind][fr ? 'fr' : 'en'];
          const lines = fr
            ? [`${title}.`, '', `Sauvegarde : ${alert.backupId}`, `Tenant : ${alert.tenantId}`, ...(alert.location ? [`Emplacement : ${alert.location}`] : []), `Cause : ${alert.reason}`, '', 'Voir `havre backup list --tenant <id>`.']
            : [`${title}.`, '', `Backup: ${alert.backupId}`, `Tenant: ${alert.tenantId}`, ...(alert.location ? [`Location: ${alert.location}`] : []), `Reason: ${alert.reason}`, '', 'See `havre backup list --tenant <id>`.'];
          await deps.mailer.send(
            { to: admin.email, userId: admin.id, template: `backups.${alert.kind}`, locale: fr ? 'fr' : 'en', subject: `[Havre] ${title}`, text: lines.join('\n'), dedupeKey: `backups.${alert.kind}:${alert.backupId}:${alert.location ?? ''}:${admin.id}` },
            trx,
          );
        }
      });
    },
  };
}

export type BackupAlerts = ReturnType<typeof createBackupAlerts>;
