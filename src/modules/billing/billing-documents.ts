/**
 * Invoices and credit notes (BIL-9): drafts carry no number; issuing assigns the next number of the
 * seller's sequence for that kind inside the issuing transaction (the counter row is locked by the
 * UPDATE, so concurrent issuers serialize and a rollback gives the number back: no gap, no
 * duplicate); an issued document is immutable — the database refuses any change (trigger), and a
 * correction is a credit note with its own sequence.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { addDays, parisDate } from '../../lib/paris-date.ts';
import type { BillingDocumentsTable, DocumentKind, DocumentLine } from './billing-tables.ts';
import { vatAmounts, type VatTreatment } from './vat.ts';

export type BillingDocument = BillingDocumentsTable;

export interface DraftInput {
  kind?: DocumentKind;
  customerId: string;
  lines: DocumentLine[];
  treatment: VatTreatment;
  buyer: Record<string, unknown>;
  periodStart?: string;
  periodEnd?: string;
  correctsId?: string;
  /** One document per key, ever (a billing run re-run finds the document it made). */
  idempotencyKey?: string;
}

export interface BillingDocumentsDeps {
  db: Db;
  clock: Clock;
  seller: { code: string; identity: Record<string, unknown>; invoicePrefix: string; creditNotePrefix: string; paymentTermsDays: number };
}

function checkLines(lines: readonly DocumentLine[]): number {
  if (lines.length === 0) throw badRequest('no_lines', 'A billing document has at least one line.');
  let net = 0;
  for (const l of lines) {
    if (!Number.isSafeInteger(l.amountCents) || !Number.isSafeInteger(l.unitCents) || l.amountCents < 0) throw badRequest('invalid_amount', 'Amounts are non-negative integer cents.');
    net += l.amountCents;
  }
  return net;
}

export function createBillingDocuments(deps: BillingDocumentsDeps) {
  const { db, clock, seller } = deps;

  async function ensureSequences(trx: Executor): Promise<void> {
    await trx
      .insertInto('billing_sequences')
      .values([
        { seller: seller.code, kind: 'invoice', prefix: seller.invoicePrefix, next_value: '1' },
        { seller: seller.code, kind: 'credit_note', prefix: seller.creditNotePrefix, next_value: '1' },
      ])
      .onConflict((oc) => oc.columns(['seller', 'kind']).doNothing())
      .execute();
  }

  const api = {
    /** A draft (no number). With an idempotency key already used, the existing document is returned. */
    async createDraft(input: DraftInput, trx: Executor = db): Promise<{ document: BillingDocument; created: boolean }> {
      const net = checkLines(input.lines);
      const totals = vatAmounts(net, input.treatment);
      const kind = input.kind ?? 'invoice';
      if ((kind === 'credit_note') !== (input.correctsId !== undefined)) throw badRequest('invalid_credit_note', 'A credit note corrects exactly one issued invoice.');
      const row: BillingDocument = {
        id: randomUUID(), kind, seller: seller.code, state: 'draft', number: null, sequence_value: null, customer_id: input.customerId, corrects_id: input.correctsId ?? null,
        period_start: input.periodStart ?? null, period_end: input.periodEnd ?? null, currency: 'EUR', lines: input.lines,
        net_cents: String(totals.netCents), vat_rate_basis_points: input.treatment.rateBasisPoints, vat_cents: String(totals.vatCents), gross_cents: String(totals.grossCents),
        vat_mention: input.treatment.mention, buyer: input.buyer, seller_identity: seller.identity, issue_date: null, due_date: null,
        idempotency_key: input.idempotencyKey ?? null, created_at: clock.now(), issued_at: null,
      };
      const inserted = await trx
        .insertInto('billing_documents')
        .values({ ...row, lines: JSON.stringify(row.lines) as never, vat_mention: row.vat_mention ? (JSON.stringify(row.vat_mention) as never) : null, buyer: JSON.stringify(row.buyer) as never, seller_identity: JSON.stringify(row.seller_identity) as never })
        .onConflict((oc) => oc.column('idempotency_key').doNothing())
        .returningAll()
        .executeTakeFirst();
      if (inserted) return { document: inserted, created: true };
      const existing = await trx.selectFrom('billing_documents').selectAll().where('idempotency_key', '=', input.idempotencyKey!).executeTakeFirstOrThrow();
      return { document: existing, created: false };
    },

    /**
     * Issues a draft: the next number of its sequence, the issue date (default: today in Paris) and
     * the due date, in ONE transaction with the caller's other writes when `trx` is given.
     */
    async issue(id: string, options: { issueDate?: string } = {}, trx?: Executor): Promise<BillingDocument> {
      const run = async (t: Executor) => {
        await ensureSequences(t);
        const draft = await t.selectFrom('billing_documents').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
        if (!draft) throw notFound('billing_document_not_found');
        if (draft.state === 'issued') return draft;
        const seq = await t
          .updateTable('billing_sequences')
          .set({ next_value: sql`next_value + 1` })
          .where('seller', '=', draft.seller)
          .where('kind', '=', draft.kind)
          .returning([sql<string>`next_value - 1`.as('value'), 'prefix'])
          .executeTakeFirstOrThrow();
        const issueDate = options.issueDate ?? parisDate(clock.now());
        return t
          .updateTable('billing_documents')
          .set({
            state: 'issued',
            sequence_value: seq.value,
            number: `${seq.prefix}${String(seq.value).padStart(6, '0')}`,
            issue_date: issueDate,
            due_date: addDays(issueDate, seller.paymentTermsDays),
            issued_at: clock.now(),
          })
          .where('id', '=', id)
          .where('state', '=', 'draft')
          .returningAll()
          .executeTakeFirstOrThrow();
      };
      return trx ? run(trx) : db.transaction().execute(run);
    },

    /** A credit note for (part of) an issued invoice, issued at once with its own sequence. */
    async creditNote(invoiceId: string, input: { lines: DocumentLine[]; treatment: VatTreatment; reason: string }): Promise<BillingDocument> {
      return db.transaction().execute(async (trx) => {
        const invoice = await trx.selectFrom('billing_documents').selectAll().where('id', '=', invoiceId).executeTakeFirst();
        if (!invoice || invoice.kind !== 'invoice' || invoice.state !== 'issued') throw conflict('invoice_not_issued', 'Only an issued invoice can be corrected by a credit note.');
        const credited = checkLines(input.lines);
        const already = await trx.selectFrom('billing_documents').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('net_cents'), sql<string>`0`).as('n')).where('corrects_id', '=', invoiceId).executeTakeFirstOrThrow();
        if (credited + Number(already.n) > Number(invoice.net_cents)) throw badRequest('credit_exceeds_invoice', 'Credit notes cannot exceed the invoice they correct.');
        const { document } = await api.createDraft({ kind: 'credit_note', correctsId: invoiceId, customerId: invoice.customer_id, lines: input.lines, treatment: input.treatment, buyer: { ...invoice.buyer, reason: input.reason } }, trx);
        return api.issue(document.id, {}, trx);
      });
    },

    async get(id: string): Promise<BillingDocument | undefined> {
      if (!isUuid(id)) return undefined;
      return db.selectFrom('billing_documents').selectAll().where('id', '=', id).executeTakeFirst();
    },

    /** Net amount (excl. VAT) already credited on an invoice by credit notes. */
    async creditedCents(invoiceId: string): Promise<number> {
      const row = await db.selectFrom('billing_documents').select((eb) => eb.fn.coalesce(eb.fn.sum<string>('net_cents'), sql<string>`0`).as('n')).where('corrects_id', '=', invoiceId).executeTakeFirstOrThrow();
      return Number(row.n);
    },

    /** A document by its number (this seller's) or its id: what an operator types in the CLI. */
    async findByRef(ref: string): Promise<BillingDocument | undefined> {
      return (await db.selectFrom('billing_documents').selectAll().where('seller', '=', seller.code).where('number', '=', ref).executeTakeFirst()) ?? api.get(ref);
    },

    /** Issued documents of some customers (a member's), newest first; drafts are not the customer's business yet. */
    async listIssued(customerIds: string[], options: { limit?: number } = {}): Promise<BillingDocument[]> {
      if (customerIds.length === 0) return [];
      return db
        .selectFrom('billing_documents')
        .selectAll()
        .where('customer_id', 'in', customerIds)
        .where('state', '=', 'issued')
        .orderBy('issue_date', 'desc')
        .orderBy('sequence_value', 'desc')
        .limit(options.limit ?? 500)
        .execute();
    },
  };
  return api;
}

export type BillingDocuments = ReturnType<typeof createBillingDocuments>;
