/**
 * The SQL of receivables (APP-2): outstanding balance per company, ageing buckets, DSO and the
 * overdue list. Every figure is aggregated by PostgreSQL inside the tenant's database — Havre never
 * loads a tenant's invoices to add them up — and always per currency: euros are never added to
 * dollars.
 *
 * "Outstanding as of a date D" (the one definition every query here shares, `receivableAsOf`):
 * an invoice issued on or before D, not cancelled, owes its amount minus the payments made on or
 * before D. It is computed as `amount − paid_cents + payments after D`: `paid_cents` is the sum of
 * all payments (kept by a trigger), so only the payments after D — none when D is today — need
 * adding up. A cancelled invoice owes nothing at any date (the schema keeps no cancellation date).
 */
import type pg from 'pg';
import { badRequest, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

/** A timestamptz column as ISO text made by PostgreSQL (pg would build a Date per row). */
export const isoTimestamp = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * CTEs `later` and `receivable`: every invoice with something still owed on the date `$<asOf>`,
 * with its `outstanding` cents that day (see the file comment). An invoice paid since D is
 * receivable on D only if a payment came after D, hence the join to `later`.
 */
function receivableAsOf(asOf: string): string {
  return `later AS (
      SELECT invoice_id, sum(amount_cents) AS cents FROM payments WHERE paid_on > ${asOf} GROUP BY invoice_id),
    receivable AS (
      SELECT i.id, i.company_id, i.number, i.currency, i.amount_cents, i.due_date,
             i.amount_cents - i.paid_cents + coalesce(l.cents, 0) AS outstanding
        FROM invoices i LEFT JOIN later l ON l.invoice_id = i.id
       WHERE i.issue_date <= ${asOf}
         AND (i.status = 'open' OR (i.status = 'paid' AND l.invoice_id IS NOT NULL)))`;
}

function encodeCursor(values: unknown[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The cursor's [text, uuid] pair, or a 400 (a cursor is opaque: anything else was not ours). */
function decodeCursor(cursor: string, kind: string): [string, string] {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(parsed) && parsed.length === 3 && parsed[0] === kind && typeof parsed[1] === 'string' && isUuid(String(parsed[2]))) {
      return [parsed[1], parsed[2] as string];
    }
  } catch {
    // fall through
  }
  throw badRequest('invalid_cursor', 'This cursor is not valid for this list; start again without it.');
}

const cents = (value: unknown): number => Number(value ?? 0);

// ---------------------------------------------------------------------------------------------
// Summary: per company and currency, with totals per currency.

export interface CurrencyBalance {
  currency: string;
  openInvoiceCount: number;
  outstandingCents: number;
  overdueCents: number;
  oldestOverdueDueDate: string | null;
}

export interface ReceivablesSummary {
  asOf: string;
  /** Companies owing something on asOf, by name (then id), each with one line per currency. */
  items: { companyId: string; companyName: string; balances: CurrencyBalance[] }[];
  /** Over every company (not only this page), one line per currency. */
  totals: (CurrencyBalance & { companyCount: number })[];
  nextCursor: string | null;
}

interface BalanceRow {
  company_id: string | null;
  company_name: string | null;
  currency: string;
  company_count: string;
  open_count: string;
  outstanding: string;
  overdue: string;
  oldest_overdue: string | null;
}

const balance = (r: BalanceRow): CurrencyBalance => ({
  currency: r.currency,
  openInvoiceCount: Number(r.open_count),
  outstandingCents: cents(r.outstanding),
  overdueCents: cents(r.overdue),
  oldestOverdueDueDate: r.oldest_overdue,
});

/**
 * One statement: the per-(company, currency) and per-currency aggregates in one pass (GROUPING
 * SETS), then one page of companies (keyset on name, id) joined to their lines, plus the totals.
 */
export async function receivablesSummary(client: pg.ClientBase, query: { asOf: string; limit?: number; cursor?: string }): Promise<ReceivablesSummary> {
  const limit = Math.min(Math.max(1, query.limit ?? DEFAULT_PAGE), MAX_PAGE);
  const [afterName, afterId] = query.cursor ? decodeCursor(query.cursor, 'summary') : [null, null];
  const { rows } = await client.query<BalanceRow>(
    `WITH ${receivableAsOf('$1::date')},
     agg AS MATERIALIZED (
       SELECT company_id, currency, grouping(company_id) AS is_total,
              count(DISTINCT company_id) AS company_count, count(*) AS open_count,
              sum(outstanding) AS outstanding,
              coalesce(sum(outstanding) FILTER (WHERE due_date < $1::date), 0) AS overdue,
              min(due_date) FILTER (WHERE due_date < $1::date) AS oldest_overdue
         FROM receivable
        GROUP BY GROUPING SETS ((company_id, currency), (currency))),
     page AS (
       SELECT c.id, c.name FROM companies c
        WHERE c.id IN (SELECT company_id FROM agg WHERE is_total = 0)
          AND ($2::text IS NULL OR (c.name, c.id) > ($2::text, $3::uuid))
        ORDER BY c.name, c.id LIMIT $4)
     SELECT p.id AS company_id, p.name AS company_name, a.currency, a.company_count, a.open_count, a.outstanding, a.overdue, a.oldest_overdue::text
       FROM page p JOIN agg a ON a.company_id = p.id AND a.is_total = 0
     UNION ALL
     SELECT NULL, NULL, currency, company_count, open_count, outstanding, overdue, oldest_overdue::text FROM agg WHERE is_total = 1
     ORDER BY company_name NULLS LAST, company_id, currency`,
    [query.asOf, afterName, afterId, limit + 1],
  );
  const items: ReceivablesSummary['items'] = [];
  const totals: ReceivablesSummary['totals'] = [];
  for (const row of rows) {
    if (row.company_id === null) {
      totals.push({ ...balance(row), companyCount: Number(row.company_count) });
      continue;
    }
    const last = items[items.length - 1];
    if (last?.companyId === row.company_id) last.balances.push(balance(row));
    else items.push({ companyId: row.company_id, companyName: row.company_name ?? '', balances: [balance(row)] });
  }
  const more = items.length > limit;
  const page = items.slice(0, limit);
  const lastOfPage = page[page.length - 1];
  return { asOf: query.asOf, items: page, totals, nextCursor: more && lastOfPage ? encodeCursor(['summary', lastOfPage.companyName, lastOfPage.companyId]) : null };
}

// ---------------------------------------------------------------------------------------------
// Ageing.

export const AGEING_BUCKETS = ['notDue', 'days1To30', 'days31To60', 'days61To90', 'over90'] as const;
export type AgeingBucket = (typeof AGEING_BUCKETS)[number];

export interface AgeingLine {
  currency: string;
  buckets: Record<AgeingBucket, { invoiceCount: number; outstandingCents: number }>;
  total: { invoiceCount: number; outstandingCents: number };
}

/** 404 `company_not_found` unless the company exists. */
export async function assertCompany(client: pg.ClientBase, companyId: string): Promise<void> {
  if ((await client.query('SELECT 1 FROM companies WHERE id = $1', [companyId])).rowCount !== 1) throw notFound('company_not_found', 'No such company.');
}

/**
 * Outstanding cents on asOf by days past due (asOf − due date): not due (0 or less: due today or
 * later), 1–30, 31–60, 61–90, over 90 — per currency, for every company or one.
 */
export async function receivablesAgeing(client: pg.ClientBase, query: { asOf: string; companyId?: string | undefined }): Promise<{ asOf: string; companyId: string | null; currencies: AgeingLine[] }> {
  if (query.companyId) await assertCompany(client, query.companyId);
  const { rows } = await client.query<{ currency: string; bucket: AgeingBucket | null; n: string; outstanding: string }>(
    `WITH ${receivableAsOf('$1::date')}
     SELECT currency, bucket, count(*) AS n, sum(outstanding) AS outstanding
       FROM (SELECT currency, outstanding,
                    CASE WHEN $1::date - due_date <= 0 THEN 'notDue'
                         WHEN $1::date - due_date <= 30 THEN 'days1To30'
                         WHEN $1::date - due_date <= 60 THEN 'days31To60'
                         WHEN $1::date - due_date <= 90 THEN 'days61To90'
                         ELSE 'over90' END AS bucket
               FROM receivable WHERE $2::uuid IS NULL OR company_id = $2::uuid) r
      GROUP BY GROUPING SETS ((currency, bucket), (currency))
      ORDER BY currency`,
    [query.asOf, query.companyId ?? null],
  );
  const byCurrency = new Map<string, AgeingLine>();
  for (const row of rows) {
    let line = byCurrency.get(row.currency);
    if (!line) {
      const zero = () => ({ invoiceCount: 0, outstandingCents: 0 });
      line = { currency: row.currency, buckets: Object.fromEntries(AGEING_BUCKETS.map((b) => [b, zero()])) as AgeingLine['buckets'], total: zero() };
      byCurrency.set(row.currency, line);
    }
    const figures = { invoiceCount: Number(row.n), outstandingCents: cents(row.outstanding) };
    if (row.bucket === null) line.total = figures;
    else line.buckets[row.bucket] = figures;
  }
  return { asOf: query.asOf, companyId: query.companyId ?? null, currencies: [...byCurrency.values()] };
}

// ---------------------------------------------------------------------------------------------
// DSO.

export interface DsoLine {
  currency: string;
  /** Outstanding on the last day of the period (`to`). */
  receivablesCents: number;
  /** Amounts of the invoices issued from `from` to `to` (inclusive), cancelled ones excluded. */
  creditSalesCents: number;
  /** Days sales outstanding, 2 decimals; null when nothing was invoiced in the period. */
  dso: number | null;
  reason: 'no_sales' | null;
}

/**
 * DSO = receivables outstanding at the end of the period ÷ credit sales invoiced during the
 * period × days in the period (from and to included), per currency. Every currency with
 * receivables or sales appears; with neither, the workspace's default currency, with a null DSO.
 */
export async function receivablesDso(client: pg.ClientBase, query: { from: string; to: string }): Promise<{ from: string; to: string; days: number; currencies: DsoLine[] }> {
  const { rows } = await client.query<{ currency: string; days: number; receivables: string; sales: string; dso: string | null }>(
    `WITH ${receivableAsOf('$2::date')},
     ar AS (SELECT currency, sum(outstanding) AS cents FROM receivable GROUP BY currency),
     sales AS (
       SELECT currency, sum(amount_cents) AS cents FROM invoices
        WHERE status <> 'cancelled' AND issue_date BETWEEN $1::date AND $2::date GROUP BY currency),
     currencies AS (
       SELECT currency FROM ar UNION SELECT currency FROM sales
       UNION SELECT default_currency FROM workspace_settings WHERE NOT EXISTS (SELECT 1 FROM ar) AND NOT EXISTS (SELECT 1 FROM sales))
     SELECT c.currency, $2::date - $1::date + 1 AS days,
            coalesce(ar.cents, 0) AS receivables, coalesce(sales.cents, 0) AS sales,
            round(coalesce(ar.cents, 0)::numeric / nullif(sales.cents, 0) * ($2::date - $1::date + 1), 2) AS dso
       FROM currencies c LEFT JOIN ar USING (currency) LEFT JOIN sales USING (currency)
      ORDER BY c.currency`,
    [query.from, query.to],
  );
  return {
    from: query.from,
    to: query.to,
    days: rows[0]?.days ?? 0,
    currencies: rows.map((r) => ({
      currency: r.currency,
      receivablesCents: cents(r.receivables),
      creditSalesCents: cents(r.sales),
      dso: r.dso === null ? null : Number(r.dso),
      reason: r.dso === null ? 'no_sales' : null,
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Overdue invoices.

export interface OverdueInvoice {
  invoiceId: string;
  number: string;
  companyId: string;
  companyName: string;
  currency: string;
  amountCents: number;
  outstandingCents: number;
  dueDate: string;
  daysLate: number;
  lastReminderAt: string | null;
}

/**
 * Invoices with something owed on asOf and due before it, oldest due date first (then id), one
 * keyset page: the cursor carries the last (due date, id).
 */
export async function overdueInvoices(client: pg.ClientBase, query: { asOf: string; limit?: number; cursor?: string }): Promise<{ asOf: string; items: OverdueInvoice[]; nextCursor: string | null }> {
  const limit = Math.min(Math.max(1, query.limit ?? DEFAULT_PAGE), MAX_PAGE);
  const [afterDue, afterId] = query.cursor ? decodeCursor(query.cursor, 'overdue') : [null, null];
  const { rows } = await client.query<Record<string, unknown>>(
    `WITH ${receivableAsOf('$1::date')}
     SELECT r.id AS "invoiceId", r.number, r.company_id AS "companyId", c.name AS "companyName", r.currency,
            r.amount_cents AS "amountCents", r.outstanding AS "outstandingCents", r.due_date::text AS "dueDate",
            $1::date - r.due_date AS "daysLate",
            (SELECT ${isoTimestamp('max(m.created_at)')} FROM reminders m WHERE m.invoice_id = r.id) AS "lastReminderAt"
       FROM receivable r JOIN companies c ON c.id = r.company_id
      WHERE r.due_date < $1::date
        AND ($2::date IS NULL OR (r.due_date, r.id) > ($2::date, $3::uuid))
      ORDER BY r.due_date, r.id LIMIT $4`,
    [query.asOf, afterDue, afterId, limit + 1],
  );
  const items = rows.slice(0, limit).map((r) => ({ ...r, amountCents: cents(r.amountCents), outstandingCents: cents(r.outstandingCents) }) as OverdueInvoice);
  const last = items[items.length - 1];
  return { asOf: query.asOf, items, nextCursor: rows.length > limit && last ? encodeCursor(['overdue', last.dueDate, last.invoiceId]) : null };
}
