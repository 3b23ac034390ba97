/** The dunning e-mails (BIL-11) to a customer's owners and administrators, in French and English. */
import type { Locale } from '../../lib/locale.ts';

function euros(cents: number, locale: Locale): string {
  return new Intl.NumberFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { style: 'currency', currency: 'EUR' }).format(cents / 100);
}

/** A reminder that an invoice is unpaid past its due date; says what happens at the end of the grace period. */
export function reminderMail(locale: Locale, v: { number: string; dueDate: string; unpaidCents: number; suspendOn: string; surchargePercent: number }): { subject: string; text: string } {
  if (locale === 'fr') {
    return {
      subject: `Havre : facture ${v.number} impayée`,
      text: `Bonjour,\n\nLa facture ${v.number}, échue le ${v.dueDate}, reste impayée pour ${euros(v.unpaidCents, 'fr')}.\n\nMerci de la régler dès que possible (carte, prélèvement SEPA ou virement en indiquant le numéro de facture). Sans paiement au ${v.suspendOn}, vos espaces seront suspendus (vos données restent intactes, vous pourrez toujours payer et exporter) et une majoration de ${v.surchargePercent} % du montant impayé sera facturée au titre des frais de gestion (conditions générales de vente, article 6.6).\n\nSi vous avez déjà payé, ignorez ce message.\n\nL’équipe Havre`,
    };
  }
  return {
    subject: `Havre: invoice ${v.number} is unpaid`,
    text: `Hello,\n\nInvoice ${v.number}, due on ${v.dueDate}, is still unpaid: ${euros(v.unpaidCents, 'en')}.\n\nPlease pay it as soon as possible (card, SEPA direct debit, or bank transfer quoting the invoice number). Without payment by ${v.suspendOn}, your workspaces will be suspended (your data stays intact; you can still pay and export) and a surcharge of ${v.surchargePercent} % of the unpaid amount will be invoiced as management fees (terms of sale, article 6.6).\n\nIf you have already paid, please ignore this message.\n\nThe Havre team`,
  };
}

/** The notice that the grace period is over: workspaces suspended, surcharge invoiced. */
export function suspensionMail(locale: Locale, v: { number: string; unpaidCents: number; surchargeNumber: string | null; surchargeCents: number }): { subject: string; text: string } {
  const fr = locale === 'fr';
  const surcharge = v.surchargeNumber
    ? fr
      ? ` Une majoration de ${euros(v.surchargeCents, 'fr')} vous est facturée au titre des frais de gestion (facture ${v.surchargeNumber}).`
      : ` A surcharge of ${euros(v.surchargeCents, 'en')} is invoiced as management fees (invoice ${v.surchargeNumber}).`
    : '';
  if (fr) {
    return {
      subject: `Havre : espaces suspendus, facture ${v.number} impayée`,
      text: `Bonjour,\n\nLa facture ${v.number} reste impayée (${euros(v.unpaidCents, 'fr')}) après le délai de grâce : vos espaces sont suspendus. Vos données restent intactes ; vous pouvez toujours payer et exporter vos données.${surcharge}\n\nDès réception du paiement, vos espaces sont rétablis immédiatement.\n\nL’équipe Havre`,
    };
  }
  return {
    subject: `Havre: workspaces suspended, invoice ${v.number} unpaid`,
    text: `Hello,\n\nInvoice ${v.number} is still unpaid (${euros(v.unpaidCents, 'en')}) after the grace period: your workspaces are suspended. Your data stays intact; you can still pay and export your data.${surcharge}\n\nAs soon as the payment is received, your workspaces are restored at once.\n\nThe Havre team`,
  };
}
