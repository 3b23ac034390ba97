/** The allowance warning e-mail (MET-3), in French and English. */
import type { Locale } from '../../lib/locale.ts';

const NAMES: Record<Locale, Record<'cpu' | 'database' | 'storage', string>> = {
  fr: { cpu: 'le temps de calcul', database: 'la taille de la base de données', storage: 'le stockage de fichiers' },
  en: { cpu: 'computing time', database: 'database size', storage: 'file storage' },
};

export function usageWarningMail(locale: Locale, v: { tenantName: string; allowance: 'cpu' | 'database' | 'storage'; threshold: 80 | 100; month: string; planCode: string }): { subject: string; text: string } {
  const what = NAMES[locale][v.allowance];
  if (locale === 'fr') {
    const reached = v.threshold === 100 ? 'a atteint 100 %' : 'a dépassé 80 %';
    return {
      subject: `Havre : « ${v.tenantName} » ${reached} de son forfait (${what})`,
      text: `Bonjour,\n\nPour le mois ${v.month}, ${what} de l’espace « ${v.tenantName} » ${reached} de ce que comprend votre forfait ${v.planCode}.\n\nAu-delà du forfait, la différence avec le plus petit forfait qui couvre l’usage est facturée pour le mois, et l’abonnement passe à ce forfait le mois suivant. Le détail est sur la page d’utilisation de l’espace.\n\nL’équipe Havre`,
    };
  }
  const reached = v.threshold === 100 ? 'has reached 100 %' : 'has passed 80 %';
  return {
    subject: `Havre: "${v.tenantName}" ${reached} of its plan (${what})`,
    text: `Hello,\n\nFor ${v.month}, the ${what} of the workspace "${v.tenantName}" ${reached} of what your ${v.planCode} plan includes.\n\nAbove the plan, the difference with the smallest plan that covers the usage is charged for the month, and the subscription moves to that plan the next month. The details are on the workspace's usage page.\n\nThe Havre team`,
  };
}
