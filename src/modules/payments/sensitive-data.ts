/**
 * Detectors of payment data Havre must never store (BIL-10): card numbers (13–19 digits, spaces or
 * dashes allowed, passing the Luhn check) and IBANs (country, check digits, BBAN, passing the
 * ISO 13616 mod-97 check). Used to refuse a bank-transfer reference that carries one, and by the
 * test that scans every payments table after a run.
 */

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

function ibanValid(iban: string): boolean {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const v = /\d/.test(ch) ? ch : String(ch.charCodeAt(0) - 55);
    for (const digit of v) remainder = (remainder * 10 + Number(digit)) % 97;
  }
  return remainder === 1;
}

/** The card numbers (PAN) found in `text`. */
export function findCardNumbers(text: string): string[] {
  const out: string[] = [];
  // Contiguous digits, or groups of four separated by spaces or dashes (how cards are written).
  for (const m of text.matchAll(/(?<!\d)(?:\d{4}[ -]){3}\d{1,7}(?!\d)|(?<!\d)\d{13,19}(?!\d)/g)) {
    const digits = m[0].replace(/[ -]/g, '');
    if (digits.length >= 13 && digits.length <= 19 && luhn(digits)) out.push(digits);
  }
  return out;
}

/** The IBANs found in `text` (spaces allowed between groups, any case). */
export function findIbans(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toUpperCase().matchAll(/\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g)) {
    const iban = m[0].replace(/ /g, '');
    if (iban.length >= 15 && iban.length <= 34 && ibanValid(iban)) out.push(iban);
  }
  return out;
}

/** True when `text` holds a card number or an IBAN. */
export function holdsPaymentData(text: string): boolean {
  return findCardNumbers(text).length > 0 || findIbans(text).length > 0;
}
