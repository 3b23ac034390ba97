/**
 * The `billing` block of the configuration (BIL-1, BIL-9): who sells (printed on every invoice,
 * French mandatory mentions), the plan table (the price list and the billing run read the same
 * values), numbering prefixes and payment terms, and the legal late-payment mentions.
 *
 * The seller identity has placeholders so that `npm start` works in development; in production a
 * placeholder is refused at start — an invoice with a fake SIREN is worse than no invoice.
 */
import { z } from 'zod';
import { DEFAULT_PLANS } from '../modules/billing/plans.ts';

/** The marker of every placeholder value: production refuses any seller field containing it. */
export const PLACEHOLDER = 'PLACEHOLDER';

const plan = z
  .object({
    code: z.string().regex(/^[a-z0-9-]{1,20}$/),
    priceCents: z.number().int().min(0),
    cpuHours: z.number().positive(),
    databaseBytes: z.number().int().positive(),
    storageBytes: z.number().int().positive(),
    support: z.enum(['none', 'standard', 'premium']),
    blockingResponseHours: z.number().int().positive().nullable(),
  })
  .strict();

const seller = z
  .object({
    /** Code of the numbering sequence (one gapless sequence per seller and kind). */
    code: z.string().regex(/^[a-z0-9-]{1,40}$/).default('havre'),
    name: z.string().min(1).default('Havre (PLACEHOLDER)'),
    legalForm: z.string().min(1).default('SAS'),
    shareCapital: z.string().min(1).default('PLACEHOLDER €'),
    address: z.string().min(1).default('PLACEHOLDER, 75000 Paris, France'),
    siren: z.string().regex(/^(\d{9}|PLACEHOLDER)$/, 'nine digits').default(PLACEHOLDER),
    rcsCity: z.string().min(1).default(PLACEHOLDER),
    vatNumber: z.string().min(1).default('FR00PLACEHOLDER'),
    email: z.string().default('billing@havre.localhost'),
  })
  .strict()
  .prefault({});

export const billingSchema = z
  .object({
    seller,
    plans: z.array(plan).min(1).default(DEFAULT_PLANS.map((p) => ({ ...p }))),
    invoicePrefix: z.string().regex(/^[A-Z0-9-]{1,10}$/).default('F'),
    creditNotePrefix: z.string().regex(/^[A-Z0-9-]{1,10}$/).default('AV'),
    paymentTermsDays: z.number().int().min(0).max(60).default(30),
    /**
     * Late-payment penalties (Code de commerce L441-10): at least 3 × the legal interest rate. The
     * text is printed on invoices; the number (basis points a year) is what dunning computes with.
     */
    latePenalty: z
      .object({
        textFr: z.string().min(1).default('trois fois le taux d’intérêt légal en vigueur'),
        textEn: z.string().min(1).default('three times the French legal interest rate in force'),
        /** Default 3 × 2.76 % (legal rate for professional creditors, 2nd half 2025): the operator updates it each semester. */
        rateBasisPoints: z.number().int().min(0).max(10_000).default(828),
      })
      .strict()
      .prefault({}),
    /** The fixed indemnity for recovery costs owed by a business paying late (D441-5): 40 €. */
    recoveryIndemnityCents: z.number().int().min(4000).default(4000),
    /** VIES check of EU VAT numbers (network); off by default — the format check always runs. */
    viesCheck: z.boolean().default(false),
    /** Base URL of the VIES REST service (used only when `viesCheck` is on). */
    viesUrl: z.url().default('https://ec.europa.eu/taxation_customs/vies/rest-api'),
  })
  .strict()
  .superRefine((b, ctx) => {
    const codes = b.plans.map((p) => p.code);
    if (new Set(codes).size !== codes.length) ctx.addIssue({ code: 'custom', path: ['plans'], message: 'plan codes must be distinct' });
  })
  .prefault({});

export type BillingConfig = z.infer<typeof billingSchema>;

/** Production refuses placeholder seller fields: each one is reported with its path. */
export function billingPlaceholderIssues(billing: BillingConfig): { path: string[]; message: string }[] {
  const out: { path: string[]; message: string }[] = [];
  for (const [k, v] of Object.entries(billing.seller)) {
    if (typeof v === 'string' && v.includes(PLACEHOLDER)) out.push({ path: ['seller', k], message: 'is a placeholder: set the real seller identity printed on invoices (required in production)' });
  }
  return out;
}
