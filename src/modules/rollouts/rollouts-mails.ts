/**
 * E-mails of the rollouts module, in French and English: the maintenance notice sent to a
 * customer's owners and administrators before an update that interrupts service (TEN-6).
 */
import type { Locale } from '../accounts/accounts-tables.ts';
import type { MailMessage } from '../mail/mail-service.ts';

export const MAINTENANCE_NOTICE_TEMPLATE = 'rollouts.maintenance_notice';

const WHEN: Record<Locale, Intl.DateTimeFormat> = {
  fr: new Intl.DateTimeFormat('fr-FR', { timeZone: 'Europe/Paris', dateStyle: 'full', timeStyle: 'short' }),
  en: new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Paris', dateStyle: 'full', timeStyle: 'short' }),
};

/** One notice to one recipient, naming each of their workspaces the update will touch. */
export function maintenanceNoticeMail(to: { email: string; userId: string; name: string; locale: Locale }, notice: { tenantNames: string[]; earliestStart: Date }): MailMessage {
  const when = WHEN[to.locale].format(notice.earliestStart);
  const list = notice.tenantNames.map((n) => `  - ${n}`).join('\n');
  const texts: Record<Locale, [string, string]> = {
    fr: [
      'Maintenance prévue de votre espace de travail Havre',
      `Bonjour ${to.name},\n\nNous allons installer une mise à jour de l'application sur ${notice.tenantNames.length > 1 ? 'les espaces de travail suivants' : "l'espace de travail suivant"} :\n${list}\n\nElle ne commencera pas avant le ${when} (heure de Paris). Pendant la mise à jour, l'espace de travail peut être brièvement indisponible ; réessayez simplement quelques instants plus tard.\n\nVous n'avez rien à faire. Pour toute question, répondez à ce message.\n`,
    ],
    en: [
      'Planned maintenance of your Havre workspace',
      `Hello ${to.name},\n\nWe are going to install an update of the application on ${notice.tenantNames.length > 1 ? 'these workspaces' : 'this workspace'}:\n${list}\n\nIt will not start before ${when} (Paris time). While it runs, the workspace may be briefly unavailable; simply try again a few moments later.\n\nThere is nothing you need to do. If you have a question, reply to this message.\n`,
    ],
  };
  const [subject, text] = texts[to.locale];
  return { to: to.email, userId: to.userId, template: MAINTENANCE_NOTICE_TEMPLATE, locale: to.locale, subject, text };
}
