/**
 * Dunning (BIL-11), a function of `(deps, now)` run by the module's loop. For each issued invoice
 * still unpaid after its due date (Paris dates):
 * - reminders at due + each of `reminderDays` (one mail per step to the customer's owners and
 *   administrators, FR/EN; a missed step is not sent late on top of the next one);
 * - past `graceDays`: the customer's tenants are suspended (data intact; export and payment stay
 *   open — the workspace API answers 423) and a surcharge of `surchargePercent` of the unpaid
 *   amount is invoiced once as management fees (key `surcharge:<invoice id>`; never on a surcharge).
 * A payment lifts the suspension at once (payments-ledger.ts), not at the next pass.
 *
 * Each invoice is handled in its own transaction with its dunning row locked `SKIP LOCKED`: any
 * number of nodes may run the pass at once, and a crash leaves each invoice done or not done.
 */
import { mulDivHalfUp } from '../billing/billing-dates.ts';
import type { BillingDocuments } from '../billing/billing-documents.ts';
import type { VatTreatment } from '../billing/vat.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { Mailer } from '../mail/mail-service.ts';
import type { TenantActor, TenantsService } from '../tenants/index.ts';
import type { Db, Trx } from '../../db/db.ts';
import type { PaymentsConfig } from '../../config/payments-config.ts';
import { addDays, daysBetween, parisDate } from '../../lib/paris-date.ts';
import { reminderMail, suspensionMail } from './dunning-mails.ts';
import { invoiceBalance, lockDunning, type Ledger } from './payments-ledger.ts';

export interface DunningDeps {
  db: Db;
  audit: AuditService;
  mailer: Pick<Mailer, 'send'>;
  ledger: Ledger;
  tenants: Pick<TenantsService, 'transition'>;
  documents: Pick<BillingDocuments, 'createDraft' | 'issue'>;
  settings: PaymentsConfig['dunning'];
  batchSize?: number;
}

export interface DunningReport {
  examined: number;
  reminders: number;
  suspensions: number;
  surcharges: number;
  settled: number;
}

/**
 * Late-payment surcharges are damages for the delay, not the price of a service: outside the
 * scope of VAT (no VAT, with the mention). `kind` is only the shape VatTreatment needs; the
 * document stores the rate (0) and the mention.
 */
const OUTSIDE_VAT_SCOPE: VatTreatment = {
  kind: 'outside_eu',
  rateBasisPoints: 0,
  mention: { fr: 'Indemnité hors du champ d’application de la TVA (article 256 du CGI).', en: 'Indemnity outside the scope of VAT (article 256 of the French tax code).' },
};

const SYSTEM: TenantActor = { type: 'system', id: null };

async function managers(trx: Trx, customerId: string) {
  return trx.selectFrom('memberships as m').innerJoin('users as u', 'u.id', 'm.user_id').select(['u.id', 'u.email', 'u.locale']).where('m.customer_id', '=', customerId).where('m.role', 'in', ['owner', 'administrator']).execute();
}

/** One pass of dunning at `now`. */
export async function runDunning(deps: DunningDeps, now: Date): Promise<DunningReport> {
  const { db, settings } = deps;
  const today = parisDate(now);
  const steps = [...settings.reminderDays].sort((a, b) => a - b);
  const report: DunningReport = { examined: 0, reminders: 0, suspensions: 0, surcharges: 0, settled: 0 };
  const overdue = await db
    .selectFrom('billing_documents as d')
    .leftJoin('invoice_dunning as x', 'x.invoice_id', 'd.id')
    .select(['d.id', 'd.customer_id'])
    .where('d.kind', '=', 'invoice')
    .where('d.state', '=', 'issued')
    .where('d.due_date', '<', today)
    .where((eb) => eb.or([eb('x.invoice_id', 'is', null), eb('x.paid_at', 'is', null)]))
    .orderBy('d.due_date')
    .limit(deps.batchSize ?? 1000)
    .execute();

  for (const candidate of overdue) {
    await db.transaction().execute(async (trx) => {
      const row = await lockDunning(trx, candidate.id, candidate.customer_id, now, { skipLocked: true });
      if (!row || row.paid_at) return; // another node has it, or it was just paid
      report.examined++;
      const invoice = (await invoiceBalance(trx, candidate.id))!;
      const unpaid = invoice.owedCents - invoice.paidCents;
      if (unpaid <= 0) {
        await deps.ledger.settle(trx, invoice.invoiceId, SYSTEM);
        report.settled++;
        return;
      }
      const number = invoice.number ?? invoice.invoiceId;
      const late = daysBetween(invoice.dueDate!, today);
      const people = await managers(trx, invoice.customerId);

      const step = steps.filter((d) => d <= late).length;
      if (step > row.reminder_step) {
        for (const p of people) {
          const locale = p.locale === 'fr' ? 'fr' : 'en';
          const mail = reminderMail(locale, { number, dueDate: invoice.dueDate!, unpaidCents: unpaid, suspendOn: addDays(invoice.dueDate!, settings.graceDays + 1), surchargePercent: settings.surchargePercent });
          await deps.mailer.send({ to: p.email, userId: p.id, template: 'payments.dunning_reminder', locale, ...mail, dedupeKey: `dunning:${invoice.invoiceId}:reminder:${step}:${p.id}` }, trx);
        }
        await trx.updateTable('invoice_dunning').set({ reminder_step: step, updated_at: now }).where('invoice_id', '=', invoice.invoiceId).execute();
        await deps.audit.record({ actorType: 'system', action: 'payments.reminder_sent', subjectType: 'invoice', subjectId: invoice.invoiceId, customerId: invoice.customerId, data: { number, step, daysLate: late, recipients: people.length } }, trx);
        report.reminders++;
      }

      if (late <= settings.graceDays || row.suspended_at) return;
      const tenants = await trx.selectFrom('tenants').select('id').where('customer_id', '=', invoice.customerId).where('state', 'in', ['trial', 'active']).forUpdate().execute();
      for (const t of tenants) {
        await deps.tenants.transition(t.id, 'suspended', { actor: SYSTEM, reason: `unpaid invoice ${number}`, from: ['trial', 'active'] }, trx);
        await deps.ledger.noteSuspension(trx, { tenantId: t.id, customerId: invoice.customerId, invoiceId: invoice.invoiceId });
      }
      let surcharge: { number: string | null; id: string; cents: number } | null = null;
      const isSurcharge = (await trx.selectFrom('billing_documents').select('idempotency_key').where('id', '=', invoice.invoiceId).executeTakeFirstOrThrow()).idempotency_key?.startsWith('surcharge:') ?? false;
      const cents = mulDivHalfUp(unpaid, settings.surchargePercent, 100);
      if (!row.surcharge_invoice_id && !isSurcharge && cents > 0) {
        const labelFr = `Frais de gestion : majoration de ${settings.surchargePercent} % du montant impayé de la facture ${number} (CGV art. 6.6)`;
        const labelEn = `Management fees: ${settings.surchargePercent} % surcharge on the unpaid amount of invoice ${number} (terms of sale art. 6.6)`;
        const { document } = await deps.documents.createDraft(
          { customerId: invoice.customerId, lines: [{ labelFr, labelEn, quantity: 1, unitCents: cents, amountCents: cents }], treatment: OUTSIDE_VAT_SCOPE, buyer: invoice.buyer, idempotencyKey: `surcharge:${invoice.invoiceId}` },
          trx,
        );
        const issued = await deps.documents.issue(document.id, { issueDate: today }, trx);
        surcharge = { number: issued.number, id: issued.id, cents };
        report.surcharges++;
      }
      await trx.updateTable('invoice_dunning').set({ suspended_at: now, surcharge_invoice_id: surcharge?.id ?? row.surcharge_invoice_id, updated_at: now }).where('invoice_id', '=', invoice.invoiceId).execute();
      await deps.audit.record({ actorType: 'system', action: 'payments.suspended_for_non_payment', subjectType: 'invoice', subjectId: invoice.invoiceId, customerId: invoice.customerId, data: { number, daysLate: late, unpaidCents: unpaid, tenants: tenants.map((t) => t.id), surchargeInvoiceId: surcharge?.id ?? null } }, trx);
      for (const p of people) {
        const locale = p.locale === 'fr' ? 'fr' : 'en';
        const mail = suspensionMail(locale, { number, unpaidCents: unpaid, surchargeNumber: surcharge?.number ?? null, surchargeCents: surcharge?.cents ?? 0 });
        await deps.mailer.send({ to: p.email, userId: p.id, template: 'payments.dunning_suspension', locale, ...mail, dedupeKey: `dunning:${invoice.invoiceId}:suspension:${p.id}` }, trx);
      }
      report.suspensions++;
    });
  }
  return report;
}
