/**
 * The billing e-mails, in French and English, and who receives them: the owners and
 * administrators of the customer (the people who may act on the subscription).
 * - BIL-6: the overuse notice — the month went above the plan, the difference is on the next
 *   invoice, the subscription moves to the plan that covers the usage.
 * - BIL-7: the price-change notice — the new price, its effective date, and the right to
 *   terminate without penalty within 30 days.
 */
import type { Executor } from '../../db/db.ts';
import type { Locale } from '../../lib/locale.ts';

/** Owners and administrators of a customer, with their language. */
export async function billingRecipients(trx: Executor, customerId: string): Promise<{ id: string; email: string; locale: Locale }[]> {
  const rows = await trx
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.id', 'u.email', 'u.locale'])
    .where('m.customer_id', '=', customerId)
    .where('m.role', 'in', ['owner', 'administrator'])
    .orderBy('u.id')
    .execute();
  return rows.map((r) => ({ id: r.id, email: r.email, locale: r.locale === 'fr' ? 'fr' : 'en' }));
}

/** Euros with a comma or a point, e.g. `49,00 €` / `€49.00` (no locale-dependent spaces). */
export function euros(cents: number, locale: Locale): string {
  const v = (cents / 100).toFixed(2);
  return locale === 'fr' ? `${v.replace('.', ',')} €` : `€${v}`;
}

export function overuseNoticeMail(
  locale: Locale,
  v: { tenantName: string; month: string; fromPlan: string; toPlan: string; chargeCents: number; invoiceMonth: string; beyondLargest: boolean },
): { subject: string; text: string } {
  if (locale === 'fr') {
    const beyond = v.beyondLargest ? '\n\nAucun forfait ne couvre entièrement cet usage : notre équipe vous contactera pour en parler.' : '';
    return {
      subject: `Havre : « ${v.tenantName} » passe au forfait ${v.toPlan}`,
      text: `Bonjour,\n\nEn ${v.month}, l’usage de l’espace « ${v.tenantName} » a dépassé ce que comprend le forfait ${v.fromPlan}. Conformément aux conditions générales, la différence avec le forfait ${v.toPlan}, soit ${euros(v.chargeCents, 'fr')} HT, figure sur la facture de ${v.invoiceMonth}, et l’abonnement passe au forfait ${v.toPlan} à partir de ce mois.${beyond}\n\nLe détail de l’usage est sur la page d’utilisation de l’espace.\n\nL’équipe Havre`,
    };
  }
  const beyond = v.beyondLargest ? '\n\nNo plan fully covers this usage: our team will contact you about it.' : '';
  return {
    subject: `Havre: "${v.tenantName}" moves to the ${v.toPlan} plan`,
    text: `Hello,\n\nIn ${v.month}, the usage of the workspace "${v.tenantName}" went above what the ${v.fromPlan} plan includes. As the terms of sale provide, the difference to the ${v.toPlan} plan, ${euros(v.chargeCents, 'en')} excl. VAT, is on the invoice of ${v.invoiceMonth}, and the subscription moves to the ${v.toPlan} plan from that month.${beyond}\n\nThe details are on the workspace's usage page.\n\nThe Havre team`,
  };
}

export function priceChangeMail(
  locale: Locale,
  v: { plan: string; oldPriceCents: number; newPriceCents: number; effectiveDate: string; objectionUntil: string; terminationLastDay: string },
): { subject: string; text: string } {
  if (locale === 'fr') {
    return {
      subject: `Havre : nouveau prix du forfait ${v.plan} à partir du ${v.effectiveDate}`,
      text: `Bonjour,\n\nLe prix du forfait ${v.plan} passera de ${euros(v.oldPriceCents, 'fr')} HT à ${euros(v.newPriceCents, 'fr')} HT par mois à partir du ${v.effectiveDate}.\n\nSi vous n’acceptez pas ce nouveau prix, vous pouvez résilier sans pénalité jusqu’au ${v.objectionUntil} inclus, depuis votre espace client (Abonnement → Résilier suite au changement de prix) ou par écrit ; le contrat prendra alors fin le ${v.terminationLastDay}, avant l’application du nouveau prix. Sans résiliation de votre part, le nouveau prix s’appliquera à la date indiquée.\n\nL’équipe Havre`,
    };
  }
  return {
    subject: `Havre: new price of the ${v.plan} plan from ${v.effectiveDate}`,
    text: `Hello,\n\nThe price of the ${v.plan} plan will change from ${euros(v.oldPriceCents, 'en')} to ${euros(v.newPriceCents, 'en')} excl. VAT per month from ${v.effectiveDate}.\n\nIf you do not accept the new price, you may terminate without penalty until ${v.objectionUntil} inclusive, from your customer portal (Subscription → Terminate after the price change) or in writing; the contract then ends on ${v.terminationLastDay}, before the new price applies. Otherwise the new price applies from that date.\n\nThe Havre team`,
  };
}
