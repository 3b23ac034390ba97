/**
 * The monthly billing run (BIL-3, BIL-4, BIL-6, BIL-9): on the 1st of month M (Paris), one invoice
 * per subscription for M, in advance — prorata for a subscription that started in M — plus, when
 * month M−1 went over the plan, the difference to the smallest plan covering that usage, the
 * subscription moving to that plan from M (with a notice to the customer's owners and
 * administrators, queued in the page's transaction, one per subscription, month and person).
 * Prices are those in force on the 1st of the month invoiced (BIL-7 price changes, `plansInForce`);
 * an overuse difference is priced as of the month that went over.
 *
 * The run of month M is meant to run on its 1st and again every day of M: a subscription that
 * starts mid-month gets its prorata invoice, dated its start day, at the next run.
 *
 * Idempotent by construction: each invoice carries the key `monthly:<subscription>:<M>` (unique),
 * and a run works page by page under a per-seller advisory lock, re-reading inside it which keys
 * exist — so a second run, or a run after a crash, makes exactly the invoices still missing. Numbers
 * are taken for a whole page at once from the seller's counter (one row lock), so they stay
 * sequential without gaps (BIL-9), and the page commits with its numbers or not at all.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { addDays } from '../../lib/paris-date.ts';
import type { Mailer } from '../mail/mail-service.ts';
import { issueDateOf, lastDayOf, prorataCents } from './billing-dates.ts';
import { billingRecipients, overuseNoticeMail } from './billing-mails.ts';
import type { DocumentLine } from './billing-tables.ts';
import { overuse, planByCode, type MonthUsage, type Plan } from './plans.ts';
import { plansInForce } from './price-changes.ts';
import { vatAmounts, vatTreatment } from './vat.ts';

export interface BillingRunDeps {
  db: Db;
  clock: Clock;
  plans: readonly Plan[];
  seller: { code: string; identity: Record<string, unknown>; invoicePrefix: string; creditNotePrefix: string; paymentTermsDays: number };
  /** Usage of a month per tenant (metering); tenants without a figure used nothing. */
  usageOf(tenantIds: string[], month: string): Promise<Map<string, MonthUsage>>;
  /** BIL-6 notices are queued in the outbox inside the page's transaction. */
  mailer: Pick<Mailer, 'send'>;
  pageSize?: number;
  /** Called after each committed page with the totals so far (the CLI's progress). */
  onPage?: ((soFar: RunOutcome) => void) | undefined;
}

export interface RunOutcome {
  month: string;
  invoiced: number;
  alreadyInvoiced: number;
  upgrades: number;
}

function previousMonth(month: string): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 1 ? `${y - 1}-12` : `${y}-${String(m - 1).padStart(2, '0')}`;
}

const MONTH_NAMES = {
  fr: ['janvier', 'février', 'mars', 'avril', 'mai', 'juin', 'juillet', 'août', 'septembre', 'octobre', 'novembre', 'décembre'],
  en: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
};
function monthLabel(month: string, locale: 'fr' | 'en'): string {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return `${MONTH_NAMES[locale][m - 1]} ${y}`;
}

export async function runBillingMonth(deps: BillingRunDeps, month: string): Promise<RunOutcome> {
  if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw new Error(`not a month: ${month}`);
  const { db, seller } = deps;
  const first = issueDateOf(month);
  const last = lastDayOf(month);
  const prev = previousMonth(month);
  const pageSize = deps.pageSize ?? 500;
  const outcome: RunOutcome = { month, invoiced: 0, alreadyInvoiced: 0, upgrades: 0 };
  // BIL-7: the prices in force on the 1st of the month invoiced, and of the month that may have gone over.
  const monthPlans = await plansInForce(db, deps.plans, first);
  const prevPlans = await plansInForce(db, deps.plans, issueDateOf(prev));
  await db
    .insertInto('billing_sequences')
    .values([
      { seller: seller.code, kind: 'invoice', prefix: seller.invoicePrefix, next_value: '1' },
      { seller: seller.code, kind: 'credit_note', prefix: seller.creditNotePrefix, next_value: '1' },
    ])
    .onConflict((oc) => oc.columns(['seller', 'kind']).doNothing())
    .execute();

  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const page = await db
      .selectFrom('subscriptions as s')
      .innerJoin('customers as c', 'c.id', 's.customer_id')
      .select(['s.id', 's.tenant_id', 's.customer_id', 's.plan', 's.next_plan', 's.next_plan_from', 's.started_on', 'c.name', 'c.country', 'c.postal_address', 'c.vat_number'])
      .where('s.id', '>', after)
      .where('s.started_on', '<=', last)
      .where((eb) => eb.or([eb('s.ends_on', 'is', null), eb('s.ends_on', '>=', first)]))
      .orderBy('s.id')
      .limit(pageSize)
      .execute();
    if (page.length === 0) break;
    after = page[page.length - 1]!.id;
    // Usage is read (outside the page's transaction) only for the subscriptions that may still need
    // it: not invoiced yet, and existing before the month (BIL-6). Issued documents are never deleted
    // (a trigger forbids it), so a key seen here is still there under the lock, where the
    // authoritative check below runs; a second run thus reads no usage at all.
    const seen = new Set((await db.selectFrom('billing_documents').select('idempotency_key').where('idempotency_key', 'in', page.map((s) => `monthly:${s.id}:${month}`)).execute()).map((r) => r.idempotency_key));
    const usage = await deps.usageOf(page.filter((s) => s.started_on < first && !seen.has(`monthly:${s.id}:${month}`)).map((s) => s.tenant_id), prev);

    await db.transaction().execute(async (trx) => {
      // One run at a time per seller: the existence check below and the numbering cannot race.
      await sql`SELECT pg_advisory_xact_lock(hashtext(${`billing-run:${seller.code}`}))`.execute(trx);
      const keys = page.map((s) => `monthly:${s.id}:${month}`);
      const existing = new Set((await trx.selectFrom('billing_documents').select('idempotency_key').where('idempotency_key', 'in', keys).execute()).map((r) => r.idempotency_key));
      const todo = page.filter((s) => !existing.has(`monthly:${s.id}:${month}`));
      outcome.alreadyInvoiced += page.length - todo.length;
      if (todo.length === 0) return;

      const seq = await trx
        .updateTable('billing_sequences')
        .set({ next_value: sql`next_value + ${todo.length}` })
        .where('seller', '=', seller.code)
        .where('kind', '=', 'invoice')
        .returning([sql<string>`next_value - ${todo.length}`.as('start'), 'prefix'])
        .executeTakeFirstOrThrow();
      let value = Number(seq.start);
      const now = deps.clock.now();
      const rows = [];
      const planMoves: { id: string; plan: string; from: string; customerId: string; tenantId: string; chargeCents: number; beyondLargest: boolean }[] = [];
      const scheduled: { id: string; tenantId: string; plan: string }[] = [];
      for (const s of todo) {
        let plan = planByCode(monthPlans, s.plan);
        if (!plan) throw new Error(`subscription ${s.id} has an unknown plan ${s.plan}`);
        // A plan change the customer asked for takes effect from its month (subscriptions.changePlan).
        const asked = s.next_plan && s.next_plan_from && s.next_plan_from <= month ? planByCode(monthPlans, s.next_plan) : undefined;
        if (asked) {
          plan = asked;
          scheduled.push({ id: s.id, tenantId: s.tenant_id, plan: asked.code });
        }
        const lines: DocumentLine[] = [];
        // BIL-6: the previous month's overuse (only for a subscription that existed then).
        const used = usage.get(s.tenant_id);
        if (used && s.started_on < first) {
          const out = overuse(prevPlans, planByCode(prevPlans, s.plan) ?? plan, used);
          if (out.kind !== 'within_plan') {
            lines.push({ labelFr: `Dépassement de ${monthLabel(prev, 'fr')} : différence avec le forfait ${out.upgradeTo.code}`, labelEn: `Usage above the plan in ${monthLabel(prev, 'en')}: difference to the ${out.upgradeTo.code} plan`, quantity: 1, unitCents: out.chargeCents, amountCents: out.chargeCents });
            // The overuse upgrade wins over a cheaper plan asked for the same month (and a dearer
            // plan asked for wins over it: the month is still charged the difference).
            const upgraded = planByCode(monthPlans, out.upgradeTo.code)!;
            if (upgraded.priceCents >= plan.priceCents) {
              plan = upgraded;
              planMoves.push({ id: s.id, plan: out.upgradeTo.code, from: s.plan, customerId: s.customer_id, tenantId: s.tenant_id, chargeCents: out.chargeCents, beyondLargest: out.kind === 'beyond_largest' });
            }
          }
        }
        // BIL-3 / BIL-4: this month, in advance; prorata when the subscription starts in it.
        const amount = s.started_on >= first ? prorataCents(plan.priceCents, s.started_on) : plan.priceCents;
        const from = s.started_on >= first ? s.started_on : first;
        lines.push({ labelFr: `Forfait ${plan.code}, du ${from} au ${last}`, labelEn: `${plan.code} plan, ${from} to ${last}`, quantity: 1, unitCents: amount, amountCents: amount });
        const treatment = vatTreatment({ country: s.country ?? 'FR', vatNumber: s.vat_number });
        const totals = vatAmounts(lines.reduce((a, l) => a + l.amountCents, 0), treatment);
        rows.push({
          id: randomUUID(), kind: 'invoice' as const, seller: seller.code, state: 'issued' as const, number: `${seq.prefix}${String(value).padStart(6, '0')}`, sequence_value: String(value), customer_id: s.customer_id, corrects_id: null,
          period_start: from, period_end: last, currency: 'EUR', lines: JSON.stringify(lines) as never, net_cents: String(totals.netCents), vat_rate_basis_points: treatment.rateBasisPoints, vat_cents: String(totals.vatCents), gross_cents: String(totals.grossCents),
          vat_mention: treatment.mention ? (JSON.stringify(treatment.mention) as never) : null, buyer: JSON.stringify({ name: s.name, country: s.country, postalAddress: s.postal_address, vatNumber: s.vat_number, tenantId: s.tenant_id }) as never,
          seller_identity: JSON.stringify(seller.identity) as never, issue_date: from, due_date: addDays(from, seller.paymentTermsDays), idempotency_key: `monthly:${s.id}:${month}`, created_at: now, issued_at: now,
        });
        value++;
      }
      await trx.insertInto('billing_documents').values(rows).execute();
      for (const change of scheduled) {
        await trx.updateTable('subscriptions').set({ plan: change.plan, next_plan: null, next_plan_from: null, updated_at: now }).where('id', '=', change.id).execute();
        await trx.updateTable('tenants').set({ plan: change.plan, updated_at: now }).where('id', '=', change.tenantId).execute();
      }
      for (const move of planMoves) {
        await trx.updateTable('subscriptions').set({ plan: move.plan, next_plan: null, next_plan_from: null, updated_at: now }).where('id', '=', move.id).execute();
        const tenant = await trx.updateTable('tenants').set({ plan: move.plan, updated_at: now }).where('id', '=', move.tenantId).returning('name').executeTakeFirst();
        // BIL-6: "with a notice" — in this transaction, so an upgrade is never without its notice.
        for (const person of await billingRecipients(trx, move.customerId)) {
          const mail = overuseNoticeMail(person.locale, { tenantName: tenant?.name ?? move.tenantId, month: monthLabel(prev, person.locale), fromPlan: move.from, toPlan: move.plan, chargeCents: move.chargeCents, invoiceMonth: monthLabel(month, person.locale), beyondLargest: move.beyondLargest });
          await deps.mailer.send({ to: person.email, userId: person.id, template: 'billing.overuse_notice', locale: person.locale, ...mail, dedupeKey: `billing:overuse:${move.id}:${month}:${person.id}` }, trx);
        }
      }
      outcome.invoiced += rows.length;
      outcome.upgrades += planMoves.length;
    });
    deps.onPage?.({ ...outcome });
  }
  return outcome;
}
