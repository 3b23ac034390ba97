/**
 * The deletion certificate (TEN-5, BKP-7): what was destroyed, when, by which rule, and the date
 * by which the last backup copy will be gone. Built from the `tenant_deletions` row (kept for the
 * operator's records) and the backups still stored, so it follows the purge: it changes when the
 * key is shredded and when the objects are deleted.
 *
 * Rendered as JSON (the API's model), plain text and HTML, in French or English (ACC-6).
 */
import type { Locale } from '../../lib/locale.ts';
import { addMonths } from './deletion-jobs.ts';
import type { DeletionRow } from './deletion-repo.ts';
import type { CancelCause, DestructionRule } from './deletion-tables.ts';

/** The longest a live tenant's backup is kept by retention (BKP-2: newest of its month, 3 months). */
const RETENTION_MONTHS = 3;
const DAY_MS = 86_400_000;

export interface DeletionCertificate {
  certificate: 'havre-deletion-certificate/1';
  tenant: { id: string; name: string; customerId: string; region: string };
  /** `destroying` while steps remain (the certificate is final once `destroyed`). */
  state: 'destroying' | 'destroyed';
  rule: DestructionRule;
  cancellation: { at: string; cause: CancelCause; reason: string | null };
  destroyedAt: string;
  completedAt: string | null;
  destroyed: {
    database: string | null;
    role: string | null;
    server: string | null;
    databaseDroppedAt: string | null;
    attachments: { count: number | null; bytes: number | null; deletedAt: string | null };
  };
  backups: {
    /** Backups whose objects are still stored somewhere (unreadable once the key is shredded). */
    remaining: number;
    /** The key is shredded at the latest on this date (destruction + 12 months). */
    keyShreddedBy: string;
    keyShreddedAt: string | null;
    objectsDeletedAt: string | null;
    /** The date by which the last backup copy is gone: deleted, or unreadable where a lock still keeps it. */
    lastCopyGoneBy: string;
  };
  issuedAt: string;
}

type Remaining = { taken_at: Date | null; started_at: Date; retain_until: Date };

/** The certificate of a destroyed (or destroying) row, at `now`. */
export function buildCertificate(row: DeletionRow, remaining: readonly Remaining[], now: Date): DeletionCertificate {
  const iso = (d: Date | null) => d?.toISOString() ?? null;
  const purgeAt = row.purge_at!;
  // Retention ends at most RETENTION_MONTHS after a backup was taken (plus the daily pass), or at
  // its lock; the key's destruction caps it all.
  const retentionEnd = remaining.reduce((max, b) => {
    const end = Math.max(b.retain_until.getTime(), addMonths(b.taken_at ?? b.started_at, RETENTION_MONTHS).getTime() + DAY_MS);
    return Math.max(max, end);
  }, 0);
  const goneBy = row.backups_deleted_at ?? (remaining.length === 0 ? (row.key_shredded_at ?? row.destroyed_at!) : new Date(Math.min(purgeAt.getTime(), retentionEnd)));
  return {
    certificate: 'havre-deletion-certificate/1',
    tenant: { id: row.tenant_id, name: row.tenant_name, customerId: row.customer_id, region: row.region },
    state: row.state === 'destroyed' ? 'destroyed' : 'destroying',
    rule: row.rule!,
    cancellation: { at: row.cancelled_at.toISOString(), cause: row.cancel_cause, reason: row.cancel_reason },
    destroyedAt: row.destroyed_at!.toISOString(),
    completedAt: iso(row.completed_at),
    destroyed: {
      database: row.database_name,
      role: row.role_name,
      server: row.server_name,
      databaseDroppedAt: iso(row.database_dropped_at),
      attachments: { count: row.attachments_count, bytes: row.attachments_bytes === null ? null : Number(row.attachments_bytes), deletedAt: iso(row.attachments_deleted_at) },
    },
    backups: {
      remaining: remaining.length,
      keyShreddedBy: purgeAt.toISOString(),
      keyShreddedAt: iso(row.key_shredded_at),
      objectsDeletedAt: iso(row.backups_deleted_at),
      lastCopyGoneBy: goneBy.toISOString(),
    },
    issuedAt: now.toISOString(),
  };
}

const TEXT = {
  en: {
    title: 'Deletion certificate',
    intro: (name: string) => `Havre certifies that the tenant "${name}" was destroyed as described below.`,
    tenant: 'Tenant',
    customer: 'Customer',
    region: 'Region',
    state: 'Status',
    states: { destroying: 'destruction in progress', destroyed: 'destroyed' },
    rule: 'Rule',
    rules: { grace_period_expired: 'end of the grace period after cancellation', customer_request: 'immediate destruction asked by the customer', staff: 'destroyed by the operator' },
    cancelled: 'Cancelled on',
    causes: { customer: 'by the customer', contract_end: 'end of the contract', trial_expired: 'trial ended without subscription', staff: 'by the operator' },
    reason: 'Reason',
    destroyedAt: 'Destroyed on',
    completedAt: 'Every step completed on',
    database: 'Database dropped',
    role: 'Database role dropped',
    attachments: (n: number | null, bytes: number | null) => `${n ?? '?'} attachment file(s), ${bytes ?? '?'} bytes, deleted`,
    backups: 'Backups',
    remaining: (n: number) => `${n} backup(s) still stored, encrypted`,
    shredBy: 'Backup encryption key destroyed by',
    shreddedAt: 'Backup encryption key destroyed on',
    objectsDeletedAt: 'Last backup objects deleted on',
    goneBy: 'Last backup copy gone by',
    goneNote: 'From the destruction of the key on, every remaining copy in every location is unreadable; the objects are deleted as soon as their write-once lock allows.',
    issued: 'Issued on',
    pending: 'pending',
  },
  fr: {
    title: 'Certificat de suppression',
    intro: (name: string) => `Havre certifie que le tenant « ${name} » a été détruit comme décrit ci-dessous.`,
    tenant: 'Tenant',
    customer: 'Client',
    region: 'Région',
    state: 'Statut',
    states: { destroying: 'destruction en cours', destroyed: 'détruit' },
    rule: 'Règle',
    rules: { grace_period_expired: 'fin du délai de grâce après résiliation', customer_request: 'destruction immédiate demandée par le client', staff: "détruit par l'opérateur" },
    cancelled: 'Résilié le',
    causes: { customer: 'par le client', contract_end: 'fin du contrat', trial_expired: "essai terminé sans abonnement", staff: "par l'opérateur" },
    reason: 'Motif',
    destroyedAt: 'Détruit le',
    completedAt: 'Toutes les étapes terminées le',
    database: 'Base de données supprimée',
    role: 'Rôle de base de données supprimé',
    attachments: (n: number | null, bytes: number | null) => `${n ?? '?'} fichier(s) joint(s), ${bytes ?? '?'} octets, supprimé(s)`,
    backups: 'Sauvegardes',
    remaining: (n: number) => `${n} sauvegarde(s) encore stockée(s), chiffrée(s)`,
    shredBy: 'Clé de chiffrement des sauvegardes détruite au plus tard le',
    shreddedAt: 'Clé de chiffrement des sauvegardes détruite le',
    objectsDeletedAt: 'Derniers objets de sauvegarde supprimés le',
    goneBy: 'Dernière copie de sauvegarde disparue au plus tard le',
    goneNote: "Dès la destruction de la clé, toute copie restante, en tout lieu, est illisible ; les objets sont supprimés dès que leur verrou d'écriture unique le permet.",
    issued: 'Émis le',
    pending: 'en attente',
  },
} as const;

function formatDate(iso: string | null, locale: Locale): string | null {
  if (!iso) return null;
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long', timeStyle: 'short', timeZone: 'Europe/Paris' }).format(new Date(iso)) + (locale === 'fr' ? ' (heure de Paris)' : ' (Paris time)');
}

/** The certificate as labelled lines, in `locale` (shared by the text and HTML forms). */
export function certificateLines(c: DeletionCertificate, locale: Locale): { title: string; intro: string; lines: [string, string][]; note: string } {
  const t = TEXT[locale];
  const date = (iso: string | null) => formatDate(iso, locale) ?? t.pending;
  const lines: [string, string][] = [
    [t.tenant, `${c.tenant.name} (${c.tenant.id})`],
    [t.customer, c.tenant.customerId],
    [t.region, c.tenant.region],
    [t.state, t.states[c.state]],
    [t.rule, t.rules[c.rule]],
    [t.cancelled, `${date(c.cancellation.at)}, ${t.causes[c.cancellation.cause]}`],
    ...(c.cancellation.reason ? ([[t.reason, c.cancellation.reason]] as [string, string][]) : []),
    [t.destroyedAt, date(c.destroyedAt)],
    [t.completedAt, date(c.completedAt)],
    [t.database, `${c.destroyed.database ?? '-'} (${c.destroyed.server ?? '-'}) — ${date(c.destroyed.databaseDroppedAt)}`],
    [t.role, c.destroyed.role ?? '-'],
    [t.attachments(c.destroyed.attachments.count, c.destroyed.attachments.bytes), date(c.destroyed.attachments.deletedAt)],
    [t.backups, t.remaining(c.backups.remaining)],
    [t.shredBy, date(c.backups.keyShreddedBy)],
    [t.shreddedAt, date(c.backups.keyShreddedAt)],
    [t.objectsDeletedAt, date(c.backups.objectsDeletedAt)],
    [t.goneBy, date(c.backups.lastCopyGoneBy)],
    [t.issued, date(c.issuedAt)],
  ];
  return { title: t.title, intro: t.intro(c.tenant.name), lines, note: t.goneNote };
}

/** Plain-text form (downloadable, printable). */
export function renderCertificateText(c: DeletionCertificate, locale: Locale): string {
  const { title, intro, lines, note } = certificateLines(c, locale);
  return [title, '='.repeat(title.length), '', intro, '', ...lines.map(([k, v]) => `${k}: ${v}`), '', note, ''].join('\n');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);

/** HTML form: one self-contained page (the tenant name is the customer's text: escaped). */
export function renderCertificateHtml(c: DeletionCertificate, locale: Locale): string {
  const { title, intro, lines, note } = certificateLines(c, locale);
  const rows = lines.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem}th{text-align:left;padding-right:1rem;vertical-align:top}td,th{padding:.25rem 0}</style></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(intro)}</p>
<table>
${rows}
</table>
<p>${escapeHtml(note)}</p></body></html>
`;
}
