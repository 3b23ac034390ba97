/**
 * VAT of an invoice (BIL-8). Prices are excluding VAT; amounts are integer cents; VAT is computed
 * once per invoice on the total excluding VAT, rounded half-up to the cent (documented rule, so a
 * customer can recompute it).
 *
 * - Customer in France: French VAT at 20 %.
 * - Business in another EU country with a VAT number that passes the format check (and, when
 *   online, the VIES check): reverse charge, no VAT invoiced, the legal mention printed.
 * - Outside the EU: no French VAT (place of supply outside France), with its mention.
 * - In another EU country without a valid VAT number (a consumer): French VAT at 20 % — a
 *   simplification valid below the EU distance-sales threshold; say so to the operator.
 */
import { mulDivHalfUp } from './billing-dates.ts';

export const EU_COUNTRIES = ['AT', 'BE', 'BG', 'CY', 'CZ', 'DE', 'DK', 'EE', 'ES', 'FI', 'FR', 'GR', 'HR', 'HU', 'IE', 'IT', 'LT', 'LU', 'LV', 'MT', 'NL', 'PL', 'PT', 'RO', 'SE', 'SI', 'SK'] as const;

/** The number part of each EU VAT number, after its prefix (Greece uses the prefix EL). */
const FORMATS: Record<string, RegExp> = {
  AT: /^U\d{8}$/, BE: /^[01]\d{9}$/, BG: /^\d{9,10}$/, CY: /^\d{8}[A-Z]$/, CZ: /^\d{8,10}$/, DE: /^\d{9}$/, DK: /^\d{8}$/, EE: /^\d{9}$/,
  ES: /^[A-Z0-9]\d{7}[A-Z0-9]$/, FI: /^\d{8}$/, FR: /^[0-9A-HJ-NP-Z]{2}\d{9}$/, GR: /^\d{9}$/, HR: /^\d{11}$/, HU: /^\d{8}$/,
  IE: /^\d[A-Z0-9+*]\d{5}[A-Z]{1,2}$/, IT: /^\d{11}$/, LT: /^(\d{9}|\d{12})$/, LU: /^\d{8}$/, LV: /^\d{11}$/, MT: /^\d{8}$/,
  NL: /^\d{9}B\d{2}$/, PL: /^\d{10}$/, PT: /^\d{9}$/, RO: /^\d{2,10}$/, SE: /^\d{12}$/, SI: /^\d{8}$/, SK: /^\d{10}$/,
};

/** Normalises a VAT number: upper case, spaces, dots and dashes removed. */
export function normalizeVatNumber(raw: string): string {
  return raw.toUpperCase().replace(/[\s.-]/g, '');
}

/**
 * True when `vatNumber` has the shape of a VAT number of `country` (ISO code; the number carries
 * its own prefix, EL for Greece). French numbers also have their key checked against the SIREN.
 */
export function vatNumberLooksValid(country: string, vatNumber: string): boolean {
  const v = normalizeVatNumber(vatNumber);
  const prefix = country === 'GR' ? 'EL' : country;
  if (!v.startsWith(prefix)) return false;
  const rest = v.slice(prefix.length);
  const format = FORMATS[country];
  if (!format || !format.test(rest)) return false;
  if (country === 'FR' && /^\d{2}$/.test(rest.slice(0, 2))) {
    const siren = Number(rest.slice(2));
    return Number(rest.slice(0, 2)) === (12 + 3 * (siren % 97)) % 97;
  }
  return true;
}

export type VatTreatment =
  | { kind: 'french_vat'; rateBasisPoints: number; mention: null }
  | { kind: 'reverse_charge'; rateBasisPoints: 0; mention: { fr: string; en: string } }
  | { kind: 'outside_eu'; rateBasisPoints: 0; mention: { fr: string; en: string } };

export const FRENCH_RATE_BASIS_POINTS = 2000;

/**
 * The treatment of a buyer. `viesValid`: the answer of the VIES check when it ran (false refuses a
 * number that has the right shape but is not registered), undefined when it did not (offline).
 */
export function vatTreatment(buyer: { country: string; vatNumber?: string | null; viesValid?: boolean }): VatTreatment {
  const country = buyer.country.toUpperCase();
  if (!(EU_COUNTRIES as readonly string[]).includes(country)) {
    return { kind: 'outside_eu', rateBasisPoints: 0, mention: { fr: 'TVA non applicable, article 259-1 du CGI (prestation rendue à un preneur établi hors de l’Union européenne).', en: 'No French VAT: article 259-1 of the French tax code (service supplied to a customer established outside the European Union).' } };
  }
  if (country !== 'FR' && buyer.vatNumber && vatNumberLooksValid(country, buyer.vatNumber) && buyer.viesValid !== false) {
    return { kind: 'reverse_charge', rateBasisPoints: 0, mention: { fr: `Autoliquidation : TVA due par le preneur (article 283-2 du CGI, article 196 de la directive 2006/112/CE). N° de TVA du client : ${normalizeVatNumber(buyer.vatNumber)}.`, en: `Reverse charge: VAT to be accounted for by the customer (article 283-2 of the French tax code, article 196 of Directive 2006/112/EC). Customer VAT number: ${normalizeVatNumber(buyer.vatNumber)}.` } };
  }
  return { kind: 'french_vat', rateBasisPoints: FRENCH_RATE_BASIS_POINTS, mention: null };
}

/** VAT and total of an invoice from its total excluding VAT (integer cents, half-up once per invoice). */
export function vatAmounts(netCents: number, treatment: VatTreatment): { netCents: number; vatCents: number; grossCents: number } {
  const vatCents = mulDivHalfUp(netCents, treatment.rateBasisPoints, 10_000);
  return { netCents, vatCents, grossCents: netCents + vatCents };
}
