/**
 * The PDF of an issued invoice or credit note (BIL-9), in French or English, with the mentions
 * French law requires on a B2B invoice (Code de commerce L441-9, CGI art. 242 nonies A): seller
 * identity (name, legal form, share capital, address, SIREN, RCS, VAT number), buyer identity and
 * VAT number, number, issue date, service period, lines excluding VAT, VAT rate and amount, totals
 * excl. VAT / VAT / incl. VAT, the VAT exemption mention when there is one, the due date, the
 * late-payment penalty rate, the 40 € fixed recovery indemnity, and (credit notes) the invoice
 * corrected.
 *
 * Everything printed comes from the document itself (seller and buyer as they were at issue; the
 * legal payment terms are part of the seller snapshot), so a PDF made years later is the same.
 * The PDF is streamed: the caller pipes the returned pdfkit document (a Readable) where it wants.
 * Helvetica (built in, WinAnsi) covers French accents and the euro sign; no font file is needed.
 */
import { createRequire } from 'node:module';
import type PDFDocument from 'pdfkit';
import type { Locale } from '../../lib/locale.ts';
import type { BillingDocumentsTable } from './billing-tables.ts';

const require = createRequire(import.meta.url);
let pdfkit: typeof PDFDocument | undefined;

/** pdfkit and its font tables (about 25 MB of memory) are loaded with the first PDF drawn, not by every process importing this file. */
function pdfDocumentClass(): typeof PDFDocument {
  return (pdfkit ??= require('pdfkit') as typeof PDFDocument);
}

/** The seller as printed (config `billing.seller` + legal payment terms), snapshotted on every document. */
export interface SellerIdentity {
  name: string;
  legalForm: string;
  shareCapital: string;
  address: string;
  siren: string;
  rcsCity: string;
  vatNumber: string;
  email?: string;
  latePenaltyFr: string;
  latePenaltyEn: string;
  recoveryIndemnityCents: number;
}

const MONTHS = {
  fr: ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre', 'décembre'],
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
};

/** `2026-10-15` → `15 octobre 2026` / `15 October 2026`. */
export function longDate(date: string | null, locale: Locale): string {
  if (!date) return '-';
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return `${d} ${MONTHS[locale][m - 1]} ${y}`;
}

/** Integer cents as `1 234,56 €` (fr) or `€1,234.56` (en); plain spaces so text extraction is stable. */
export function money(cents: number | string, locale: Locale): string {
  const n = Number(cents);
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  const units = Math.floor(abs / 100).toString();
  const dec = String(abs % 100).padStart(2, '0');
  if (locale === 'fr') return `${sign}${units.replace(/\B(?=(\d{3})+(?!\d))/g, ' ')},${dec} €`;
  return `${sign}€${units.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${dec}`;
}

const T = {
  fr: {
    invoice: 'FACTURE', credit_note: 'AVOIR', number: 'N°', issued: 'Date d’émission', period: 'Période de service', due: 'Date d’échéance', corrects: 'Avoir rectifiant la facture',
    of: 'du', seller: 'Vendeur', buyer: 'Client', vat: 'N° TVA intracommunautaire', capital: 'au capital de', rcs: 'RCS', siren: 'SIREN',
    description: 'Désignation', qty: 'Qté', unit: 'P.U. HT', amount: 'Montant HT', net: 'Total HT', vatLine: 'TVA', gross: 'Total TTC', reason: 'Motif',
    from: 'du', to: 'au', payment: 'Conditions de paiement', penalty: (t: string) => `Pénalités de retard : ${t}, exigibles de plein droit dès le lendemain de la date d’échéance.`,
    indemnity: (a: string) => `Indemnité forfaitaire pour frais de recouvrement due par tout professionnel en retard de paiement : ${a} (quarante euros, articles L441-10 et D441-5 du Code de commerce).`,
    discount: 'Pas d’escompte pour paiement anticipé.', payBy: (d: string) => `À payer au plus tard le ${d}.`, noVatNumber: 'non communiqué',
  },
  en: {
    invoice: 'INVOICE', credit_note: 'CREDIT NOTE', number: 'No.', issued: 'Issue date', period: 'Service period', due: 'Due date', corrects: 'Credit note correcting invoice',
    of: 'of', seller: 'Seller', buyer: 'Customer', vat: 'VAT number', capital: 'with a share capital of', rcs: 'RCS', siren: 'SIREN',
    description: 'Description', qty: 'Qty', unit: 'Unit price excl. VAT', amount: 'Amount excl. VAT', net: 'Total excl. VAT', vatLine: 'VAT', gross: 'Total incl. VAT', reason: 'Reason',
    from: 'from', to: 'to', payment: 'Payment terms', penalty: (t: string) => `Late-payment penalties: ${t}, due by law from the day after the due date.`,
    indemnity: (a: string) => `Fixed indemnity for recovery costs owed by any business paying late: ${a} (forty euros, articles L441-10 and D441-5 of the French Commercial Code).`,
    discount: 'No discount for early payment.', payBy: (d: string) => `Payable by ${d} at the latest.`, noVatNumber: 'not provided',
  },
};

export interface InvoicePdfInput {
  document: BillingDocumentsTable;
  locale: Locale;
  /** For a credit note: the invoice it corrects. */
  corrects?: { number: string | null; issueDate: string | null } | null;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

/**
 * Draws the document and returns the pdfkit stream, already ended: pipe it to a file or a reply.
 * Refuses drafts: a draft has no number and is not an invoice.
 */
export function renderInvoicePdf(input: InvoicePdfInput): PDFKit.PDFDocument {
  const { document: d, locale } = input;
  if (d.state !== 'issued') throw new Error('only an issued document has a PDF');
  const t = T[locale];
  const colon = locale === 'fr' ? ' :' : ':';
  const seller = d.seller_identity as unknown as Partial<SellerIdentity>;
  const buyer = d.buyer;
  const title = `${d.kind === 'invoice' ? t.invoice : t.credit_note} ${d.number}`;
  const pdf = new (pdfDocumentClass())({ size: 'A4', margin: 50, info: { Title: title, Author: str(seller.name), Subject: title }, lang: locale });
  const left = 50;
  const right = pdf.page.width - 50;
  const width = right - left;

  // Header: seller, and the kind and number of the document.
  pdf.font('Helvetica-Bold').fontSize(16).text(str(seller.name), left, 50, { width: width / 2 });
  pdf.font('Helvetica-Bold').fontSize(18).text(d.kind === 'invoice' ? t.invoice : t.credit_note, left + width / 2, 50, { width: width / 2, align: 'right' });
  pdf.font('Helvetica').fontSize(11).text(`${t.number} ${d.number}`, left + width / 2, 74, { width: width / 2, align: 'right' });

  // Seller and buyer identities, side by side.
  const top = 110;
  pdf.font('Helvetica-Bold').fontSize(9).text(t.seller.toUpperCase(), left, top);
  pdf.font('Helvetica').fontSize(9);
  pdf.text(`${str(seller.name)}, ${str(seller.legalForm)} ${t.capital} ${str(seller.shareCapital)}`, left, top + 14, { width: width / 2 - 10 });
  pdf.text(str(seller.address), { width: width / 2 - 10 });
  pdf.text(`${t.siren} ${str(seller.siren)} – ${t.rcs} ${str(seller.rcsCity)}`, { width: width / 2 - 10 });
  pdf.text(`${t.vat}${colon} ${str(seller.vatNumber)}`, { width: width / 2 - 10 });
  if (seller.email) pdf.text(seller.email, { width: width / 2 - 10 });
  const sellerBottom = pdf.y;

  const bx = left + width / 2 + 10;
  pdf.font('Helvetica-Bold').fontSize(9).text(t.buyer.toUpperCase(), bx, top);
  pdf.font('Helvetica').fontSize(9).text(str(buyer.name), bx, top + 14, { width: width / 2 - 10 });
  if (str(buyer.postalAddress)) pdf.text(str(buyer.postalAddress), { width: width / 2 - 10 });
  if (str(buyer.country)) pdf.text(str(buyer.country), { width: width / 2 - 10 });
  pdf.text(`${t.vat}${colon} ${str(buyer.vatNumber) || t.noVatNumber}`, { width: width / 2 - 10 });
  let y = Math.max(sellerBottom, pdf.y) + 20;

  // Dates and references.
  const facts: [string, string][] = [
    [t.issued, longDate(d.issue_date, locale)],
    [t.period, d.period_start ? `${t.from} ${longDate(d.period_start, locale)} ${t.to} ${longDate(d.period_end, locale)}` : '-'],
    [t.due, longDate(d.due_date, locale)],
  ];
  if (d.kind === 'credit_note') facts.push([t.corrects, `${input.corrects?.number ?? '?'} ${t.of} ${longDate(input.corrects?.issueDate ?? null, locale)}`]);
  if (d.kind === 'credit_note' && str(buyer.reason)) facts.push([t.reason, str(buyer.reason)]);
  for (const [k, v] of facts) {
    pdf.font('Helvetica-Bold').fontSize(10).text(`${k}${colon}`, left, y, { width: 160 });
    pdf.font('Helvetica').text(v, left + 165, y, { width: width - 165 });
    y = pdf.y + 4;
  }

  // Lines, excluding VAT.
  y += 12;
  const cols = [left, left + 250, left + 290, left + 400];
  const colW = [245, 35, 105, right - (left + 400)];
  pdf.rect(left, y - 4, width, 20).fill('#eeeeee').fillColor('black');
  pdf.font('Helvetica-Bold').fontSize(9);
  [t.description, t.qty, t.unit, t.amount].forEach((h, i) => pdf.text(h, cols[i]!, y + 1, { width: colW[i]!, align: i === 0 ? 'left' : 'right' }));
  y += 22;
  pdf.font('Helvetica').fontSize(9);
  for (const line of d.lines) {
    const label = locale === 'fr' ? line.labelFr : line.labelEn;
    pdf.text(label, cols[0]!, y, { width: colW[0]! });
    const h = pdf.y;
    pdf.text(String(line.quantity), cols[1]!, y, { width: colW[1]!, align: 'right' });
    pdf.text(money(line.unitCents, locale), cols[2]!, y, { width: colW[2]!, align: 'right' });
    pdf.text(money(line.amountCents, locale), cols[3]!, y, { width: colW[3]!, align: 'right' });
    y = Math.max(h, pdf.y) + 6;
  }
  pdf.moveTo(left, y).lineTo(right, y).strokeColor('#999999').stroke();
  y += 10;

  // Totals.
  const rate = `${(d.vat_rate_basis_points / 100).toLocaleString(locale === 'fr' ? 'fr-FR' : 'en-GB')} %`;
  const totals: [string, string, boolean][] = [
    [t.net, money(d.net_cents, locale), false],
    [`${t.vatLine} ${rate}`, money(d.vat_cents, locale), false],
    [t.gross, money(d.gross_cents, locale), true],
  ];
  for (const [k, v, bold] of totals) {
    pdf.font(bold ? 'Helvetica-Bold' : 'Helvetica').fontSize(bold ? 11 : 10);
    pdf.text(k, left + 250, y, { width: 150, align: 'right' });
    pdf.text(v, cols[3]!, y, { width: colW[3]!, align: 'right' });
    y = pdf.y + 5;
  }
  y += 10;

  // VAT mention (reverse charge, outside the EU).
  pdf.font('Helvetica').fontSize(9);
  if (d.vat_mention) {
    pdf.font('Helvetica-Oblique').text(d.vat_mention[locale], left, y, { width });
    y = pdf.y + 12;
  }

  // Payment terms: due date, late-payment penalties, the 40 € indemnity.
  pdf.font('Helvetica-Bold').fontSize(10).text(t.payment, left, y);
  pdf.font('Helvetica').fontSize(9).moveDown(0.3);
  if (d.kind === 'invoice') pdf.text(t.payBy(longDate(d.due_date, locale)), { width });
  pdf.text(t.discount, { width });
  pdf.text(t.penalty(locale === 'fr' ? str(seller.latePenaltyFr) : str(seller.latePenaltyEn)), { width });
  pdf.text(t.indemnity(money(seller.recoveryIndemnityCents ?? 4000, locale)), { width });

  // Footer: the seller's legal line.
  const footer = `${str(seller.name)}, ${str(seller.legalForm)} ${t.capital} ${str(seller.shareCapital)} – ${str(seller.address)} – ${t.siren} ${str(seller.siren)} – ${t.rcs} ${str(seller.rcsCity)} – ${t.vat} ${str(seller.vatNumber)}`;
  pdf.page.margins.bottom = 0; // the footer sits in the bottom margin, on this page
  pdf.fontSize(7).fillColor('#555555').text(footer, left, pdf.page.height - 70, { width, align: 'center', lineBreak: true, height: 30 });
  pdf.end();
  return pdf;
}
