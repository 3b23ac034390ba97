/**
 * What the billing API shows: whitelists of fields (never a row as is), money as integer cents.
 */
import { z } from 'zod';
import type { BillingDocument } from './billing-documents.ts';
import type { PriceChange } from './price-changes.ts';
import type { Subscription } from './subscriptions.ts';

export const subscriptionView = z.object({
  id: z.string(),
  tenantId: z.string(),
  customerId: z.string(),
  plan: z.string(),
  startedOn: z.string(),
  pendingPlanChange: z.object({ plan: z.string(), from: z.string().describe('YYYY-MM: the first month at the new plan') }).nullable(),
  termination: z.object({ receivedAt: z.string(), source: z.string(), lastDay: z.string() }).nullable(),
});

export function presentSubscription(s: Subscription): z.infer<typeof subscriptionView> {
  return {
    id: s.id, tenantId: s.tenant_id, customerId: s.customer_id, plan: s.plan, startedOn: s.started_on,
    pendingPlanChange: s.next_plan && s.next_plan_from ? { plan: s.next_plan, from: s.next_plan_from } : null,
    termination: s.ends_on && s.termination_received_at ? { receivedAt: s.termination_received_at.toISOString(), source: s.termination_source ?? 'portal', lastDay: s.ends_on } : null,
  };
}

const lineView = z.object({ labelFr: z.string(), labelEn: z.string(), quantity: z.number(), unitCents: z.number(), amountCents: z.number() });

export const invoiceView = z.object({
  id: z.string(),
  kind: z.enum(['invoice', 'credit_note']),
  number: z.string().nullable(),
  customerId: z.string(),
  correctsId: z.string().nullable(),
  issueDate: z.string().nullable(),
  dueDate: z.string().nullable(),
  periodStart: z.string().nullable(),
  periodEnd: z.string().nullable(),
  currency: z.string(),
  netCents: z.number(),
  vatRateBasisPoints: z.number(),
  vatCents: z.number(),
  grossCents: z.number(),
  vatMention: z.object({ fr: z.string(), en: z.string() }).nullable(),
  lines: z.array(lineView),
});

export function presentInvoice(d: BillingDocument): z.infer<typeof invoiceView> {
  return {
    id: d.id, kind: d.kind, number: d.number, customerId: d.customer_id, correctsId: d.corrects_id, issueDate: d.issue_date, dueDate: d.due_date,
    periodStart: d.period_start, periodEnd: d.period_end, currency: d.currency, netCents: Number(d.net_cents), vatRateBasisPoints: d.vat_rate_basis_points,
    vatCents: Number(d.vat_cents), grossCents: Number(d.gross_cents), vatMention: d.vat_mention,
    lines: d.lines.map((l) => ({ labelFr: l.labelFr, labelEn: l.labelEn, quantity: l.quantity, unitCents: l.unitCents, amountCents: l.amountCents })),
  };
}

export const priceChangeView = z.object({
  id: z.string(),
  plan: z.string(),
  oldPriceCents: z.number(),
  newPriceCents: z.number(),
  effectiveDate: z.string(),
  announcedAt: z.string(),
  objectionUntil: z.string(),
});

export function presentPriceChange(c: PriceChange): z.infer<typeof priceChangeView> {
  return { id: c.id, plan: c.plan, oldPriceCents: Number(c.old_price_cents), newPriceCents: Number(c.new_price_cents), effectiveDate: c.effective_date, announcedAt: c.announced_at.toISOString(), objectionUntil: c.objection_until };
}
