import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

// Today in Paris: 2026-12-10. Most figures are asked as of 2026-11-30, so that payments made
// between the two dates exist.
const NOW = new Date('2026-12-10T09:00:00Z');
const AS_OF = '2026-11-30';

let ctx: TestContext;
let ws: Workspace;
let alpha: string;
let beta: string;

/** An invoice written straight into the tenant's database (the payments trigger keeps paid_cents). */
async function invoice(w: Workspace, companyId: string, number: string, issueDate: string, dueDate: string, amountCents: number, currency = 'EUR', status = 'open'): Promise<string> {
  const id = randomUUID();
  await tenantQuery(ctx, w, `INSERT INTO invoices (id, company_id, number, issue_date, due_date, amount_cents, currency, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now(), now())`, [
    id,
    companyId,
    number,
    issueDate,
    dueDate,
    amountCents,
    currency,
    status,
  ]);
  return id;
}

async function payment(w: Workspace, invoiceId: string, paidOn: string, amountCents: number): Promise<void> {
  await tenantQuery(ctx, w, 'INSERT INTO payments (id, invoice_id, paid_on, amount_cents, created_at) VALUES ($1, $2, $3, $4, now())', [randomUUID(), invoiceId, paidOn, amountCents]);
}

/**
 * The fixed data set (cents). Alpha SARL, EUR, all issued 2026-06-01, one invoice per ageing
 * boundary as of 2026-11-30 (days late 0, 1, 30, 31, 60, 61, 90, 91):
 *   A-D0   due 11-30    10 000                                  not due
 *   A-D1   due 11-29    20 000                                  1–30
 *   A-D30  due 10-31    40 000                                  1–30
 *   A-D31  due 10-30    80 000, 30 000 paid 11-15 → 50 000      31–60
 *   A-D60  due 10-01   160 000                                  31–60
 *   A-D61  due 09-30   320 000, 100 000 paid 12-05 (after)      61–90
 *   A-D90  due 09-01   640 000                                  61–90
 *   A-D91  due 08-31 1 280 000                                  > 90
 *   A-PAID due 11-01    50 000 paid in full 11-20               excluded
 *   A-CXL  due 10-15   999 900 cancelled                        excluded
 *   A-NEXT issued 12-01 (after asOf), 5 000                     excluded
 * Beta GmbH:
 *   B-1 EUR issued 10-11, due 11-10, 25 000 paid in full 12-02 (after asOf)   1–30
 *   B-2 USD issued 11-15, due 12-15, 100 000                                   not due
 *   B-3 USD issued 09-20, due 10-20, 50 000                                    31–60 (41 days)
 * Gamma Ltd: one invoice paid in full before asOf (owes nothing).
 */
beforeAll(async () => {
  ctx = await createTestContext({ now: NOW });
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
  const http = ws.owner.http;
  alpha = (await createRecord(http, `${ws.base}/companies`, { name: 'Alpha SARL' })).id;
  beta = (await createRecord(http, `${ws.base}/companies`, { name: 'Beta GmbH' })).id;
  const gamma = (await createRecord(http, `${ws.base}/companies`, { name: 'Gamma Ltd' })).id;
  const issued = '2026-06-01';
  await invoice(ws, alpha, 'A-D0', issued, '2026-11-30', 10_000);
  await invoice(ws, alpha, 'A-D1', issued, '2026-11-29', 20_000);
  await invoice(ws, alpha, 'A-D30', issued, '2026-10-31', 40_000);
  await payment(ws, await invoice(ws, alpha, 'A-D31', issued, '2026-10-30', 80_000), '2026-11-15', 30_000);
  await invoice(ws, alpha, 'A-D60', issued, '2026-10-01', 160_000);
  await payment(ws, await invoice(ws, alpha, 'A-D61', issued, '2026-09-30', 320_000), '2026-12-05', 100_000);
  await invoice(ws, alpha, 'A-D90', issued, '2026-09-01', 640_000);
  await invoice(ws, alpha, 'A-D91', issued, '2026-08-31', 1_280_000);
  await payment(ws, await invoice(ws, alpha, 'A-PAID', issued, '2026-11-01', 50_000), '2026-11-20', 50_000);
  await invoice(ws, alpha, 'A-CXL', issued, '2026-10-15', 999_900, 'EUR', 'cancelled');
  await invoice(ws, alpha, 'A-NEXT', '2026-12-01', '2026-12-31', 5_000);
  await payment(ws, await invoice(ws, beta, 'B-1', '2026-10-11', '2026-11-10', 25_000), '2026-12-02', 25_000);
  await invoice(ws, beta, 'B-2', '2026-11-15', '2026-12-15', 100_000, 'USD');
  await invoice(ws, beta, 'B-3', '2026-09-20', '2026-10-20', 50_000, 'USD');
  await payment(ws, await invoice(ws, gamma, 'G-1', '2026-09-01', '2026-10-01', 70_000), '2026-10-01', 70_000);
});
afterAll(async () => ctx?.close());

const zero = { invoiceCount: 0, outstandingCents: 0 };

describe('receivables', () => {
  it('[APP-2] outstanding per company and currency as of a date: partial payments, payments after the date, cancelled and later invoices, currencies apart', async () => {
    const res = await ws.owner.http.get(`${ws.base}/receivables/summary?asOf=${AS_OF}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      asOf: AS_OF,
      items: [
        { companyId: alpha, companyName: 'Alpha SARL', balances: [{ currency: 'EUR', openInvoiceCount: 8, outstandingCents: 2_520_000, overdueCents: 2_510_000, oldestOverdueDueDate: '2026-08-31' }] },
        {
          companyId: beta,
          companyName: 'Beta GmbH',
          balances: [
            { currency: 'EUR', openInvoiceCount: 1, outstandingCents: 25_000, overdueCents: 25_000, oldestOverdueDueDate: '2026-11-10' },
            { currency: 'USD', openInvoiceCount: 2, outstandingCents: 150_000, overdueCents: 50_000, oldestOverdueDueDate: '2026-10-20' },
          ],
        },
      ],
      totals: [
        { currency: 'EUR', companyCount: 2, openInvoiceCount: 9, outstandingCents: 2_545_000, overdueCents: 2_535_000, oldestOverdueDueDate: '2026-08-31' },
        { currency: 'USD', companyCount: 1, openInvoiceCount: 2, outstandingCents: 150_000, overdueCents: 50_000, oldestOverdueDueDate: '2026-10-20' },
      ],
      nextCursor: null,
    });
  });

  it('[APP-2] the summary defaults to today in Paris (later payments count, later invoices appear) and pages by company name', async () => {
    const today = await ws.owner.http.get(`${ws.base}/receivables/summary`);
    expect(today.body.asOf).toBe('2026-12-10');
    // A-D61 now owes 220 000, B-1 is paid, A-NEXT (issued 12-01) is owed and not due.
    expect(today.body.totals).toEqual([
      { currency: 'EUR', companyCount: 1, openInvoiceCount: 9, outstandingCents: 2_425_000, overdueCents: 2_420_000, oldestOverdueDueDate: '2026-08-31' },
      { currency: 'USD', companyCount: 1, openInvoiceCount: 2, outstandingCents: 150_000, overdueCents: 50_000, oldestOverdueDueDate: '2026-10-20' },
    ]);
    const first = await ws.owner.http.get(`${ws.base}/receivables/summary?asOf=${AS_OF}&limit=1`);
    expect(first.body.items.map((i: any) => i.companyName)).toEqual(['Alpha SARL']);
    expect(first.body.totals).toHaveLength(2);
    const second = await ws.owner.http.get(`${ws.base}/receivables/summary?asOf=${AS_OF}&limit=1&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((i: any) => i.companyName)).toEqual(['Beta GmbH']);
    expect(second.body.nextCursor).toBeNull();
  });

  it('[APP-2] ageing buckets per currency at every boundary (0, 1, 30, 31, 60, 61, 90, 91 days late), and for one company', async () => {
    const res = await ws.owner.http.get(`${ws.base}/receivables/ageing?asOf=${AS_OF}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({
      asOf: AS_OF,
      companyId: null,
      currencies: [
        {
          currency: 'EUR',
          buckets: {
            notDue: { invoiceCount: 1, outstandingCents: 10_000 }, // 0 days
            days1To30: { invoiceCount: 3, outstandingCents: 85_000 }, // 1 and 30 days, B-1 (20 days)
            days31To60: { invoiceCount: 2, outstandingCents: 210_000 }, // 31 (50 000 after the partial payment) and 60 days
            days61To90: { invoiceCount: 2, outstandingCents: 960_000 }, // 61 (the 12-05 payment does not count) and 90 days
            over90: { invoiceCount: 1, outstandingCents: 1_280_000 }, // 91 days
          },
          total: { invoiceCount: 9, outstandingCents: 2_545_000 },
        },
        {
          currency: 'USD',
          buckets: { notDue: { invoiceCount: 1, outstandingCents: 100_000 }, days1To30: zero, days31To60: { invoiceCount: 1, outstandingCents: 50_000 }, days61To90: zero, over90: zero },
          total: { invoiceCount: 2, outstandingCents: 150_000 },
        },
      ],
    });
    const one = await ws.owner.http.get(`${ws.base}/receivables/ageing?asOf=${AS_OF}&companyId=${beta}`);
    expect(one.body.companyId).toBe(beta);
    expect(one.body.currencies.map((c: any) => [c.currency, c.buckets.days1To30.outstandingCents, c.total.outstandingCents])).toEqual([
      ['EUR', 25_000, 25_000],
      ['USD', 0, 150_000],
    ]);
    expect((await ws.owner.http.get(`${ws.base}/receivables/ageing?companyId=${randomUUID()}`)).body.code).toBe('company_not_found');
  });

  it('[APP-2] DSO = receivables at the end ÷ credit sales of the period × days, per currency; null with a reason without sales', async () => {
    // November (30 days). USD: receivables on 11-30 = 150 000, sales = B-2 100 000 → 150 000 / 100 000 × 30 = 45.
    // EUR: nothing issued in November → no DSO; receivables 2 545 000 still shown.
    const nov = await ws.owner.http.get(`${ws.base}/receivables/dso?from=2026-11-01&to=2026-11-30`);
    expect(nov.status, JSON.stringify(nov.body)).toBe(200);
    expect(nov.body).toEqual({
      from: '2026-11-01',
      to: '2026-11-30',
      days: 30,
      currencies: [
        { currency: 'EUR', receivablesCents: 2_545_000, creditSalesCents: 0, dso: null, reason: 'no_sales' },
        { currency: 'USD', receivablesCents: 150_000, creditSalesCents: 100_000, dso: 45, reason: null },
      ],
    });
    // June to November (183 days). EUR sales: the eight A-D* (2 550 000) + A-PAID (50 000) + B-1 (25 000)
    // + G-1 (70 000) = 2 695 000 (A-CXL cancelled, A-NEXT later); 2 545 000 / 2 695 000 × 183 = 172.8144… → 172.81.
    const half = await ws.owner.http.get(`${ws.base}/receivables/dso?from=2026-06-01&to=2026-11-30`);
    expect(half.body.days).toBe(183);
    expect(half.body.currencies).toEqual([
      { currency: 'EUR', receivablesCents: 2_545_000, creditSalesCents: 2_695_000, dso: 172.81, reason: null },
      { currency: 'USD', receivablesCents: 150_000, creditSalesCents: 150_000, dso: 183, reason: null },
    ]);
    // Before any invoice: nothing owed, nothing sold — the default currency, with no DSO.
    const before = await ws.owner.http.get(`${ws.base}/receivables/dso?from=2025-01-01&to=2025-01-31`);
    expect(before.body.currencies).toEqual([{ currency: 'EUR', receivablesCents: 0, creditSalesCents: 0, dso: null, reason: 'no_sales' }]);
  });

  it('[APP-2] DSO periods are validated: from after to, or more than 366 days, is a 400', async () => {
    const http = ws.owner.http;
    expect((await http.get(`${ws.base}/receivables/dso?from=2026-12-01&to=2026-11-30`)).body.code).toBe('invalid_period');
    expect((await http.get(`${ws.base}/receivables/dso?from=2026-01-01&to=2027-01-02`)).body.code).toBe('invalid_period');
    expect((await http.get(`${ws.base}/receivables/dso?from=2026-01-01&to=2027-01-01`)).status).toBe(200); // 366 days
    expect((await http.get(`${ws.base}/receivables/dso?from=2026-11-01`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/dso?from=2026-02-30&to=2026-03-01`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/summary?asOf=30/11/2026`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/summary?limit=0`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/ageing?companyId=nope`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/overdue?sort=amount`)).status).toBe(400);
    expect((await http.get(`${ws.base}/receivables/overdue?cursor=garbage`)).body.code).toBe('invalid_cursor');
  });

  it('[APP-2] the overdue list: oldest due date first, days late and outstanding, keyset pages', async () => {
    const seen: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await ws.owner.http.get(`${ws.base}/receivables/overdue?asOf=${AS_OF}&limit=4${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      seen.push(...res.body.items);
      cursor = res.body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((i) => [i.number, i.dueDate, i.daysLate, i.outstandingCents])).toEqual([
      ['A-D91', '2026-08-31', 91, 1_280_000],
      ['A-D90', '2026-09-01', 90, 640_000],
      ['A-D61', '2026-09-30', 61, 320_000],
      ['A-D60', '2026-10-01', 60, 160_000],
      ['B-3', '2026-10-20', 41, 50_000],
      ['A-D31', '2026-10-30', 31, 50_000],
      ['A-D30', '2026-10-31', 30, 40_000],
      ['B-1', '2026-11-10', 20, 25_000],
      ['A-D1', '2026-11-29', 1, 20_000],
    ]);
    expect(seen[5]).toMatchObject({ companyId: alpha, companyName: 'Alpha SARL', currency: 'EUR', amountCents: 80_000, lastReminderAt: null });
    expect(seen[4]).toMatchObject({ companyName: 'Beta GmbH', currency: 'USD' });
  });

  it('[APP-2] every member role reads receivables', async () => {
    const collaborator = await addMember(ctx, ws, 'collaborator');
    const res = await collaborator.http.get(`${ws.base}/receivables/ageing?asOf=${AS_OF}`);
    expect(res.status).toBe(200);
    expect(res.body.currencies[0].total.outstandingCents).toBe(2_545_000);
  });

  it('[APP-2] PostgreSQL does the sums: 2,000 invoices in three companies and two currencies, summed exactly', async () => {
    const big = await createWorkspace(ctx, { name: 'Bulk' });
    const companies = ['C0', 'C1', 'C2'];
    const ids: string[] = [];
    for (const name of companies) ids.push((await createRecord(big.owner.http, `${big.base}/companies`, { name })).id);
    // Invoice i (1..2000): company i % 3, EUR when i is odd else USD, amount i × 100 + 7, due
    // (i % 150) days before asOf, issued 10 days before that; every 4th half paid on 11-01,
    // every 10th cancelled.
    await tenantQuery(
      ctx,
      big,
      `INSERT INTO invoices (id, company_id, number, issue_date, due_date, amount_cents, currency, status, created_at, updated_at)
       SELECT gen_random_uuid(), ($2::uuid[])[i % 3 + 1], 'N-' || i, $1::date - (i % 150) - 10, $1::date - (i % 150), i * 100 + 7,
              CASE WHEN i % 2 = 1 THEN 'EUR' ELSE 'USD' END, CASE WHEN i % 10 = 0 THEN 'cancelled' ELSE 'open' END, now(), now()
         FROM generate_series(1, 2000) i`,
      [AS_OF, ids],
    );
    await tenantQuery(
      ctx,
      big,
      `INSERT INTO payments (id, invoice_id, paid_on, amount_cents, created_at)
       SELECT gen_random_uuid(), id, '2026-11-01', amount_cents / 2, now() FROM invoices WHERE substr(number, 3)::int % 4 = 0`,
    );
    const expected = new Map<string, { outstanding: number; overdue: number; count: number }>();
    const buckets = new Map<string, number>();
    for (let i = 1; i <= 2000; i++) {
      if (i % 10 === 0) continue;
      const amount = i * 100 + 7;
      const outstanding = i % 4 === 0 ? amount - Math.floor(amount / 2) : amount;
      const daysLate = i % 150;
      const key = `${companies[i % 3]}/${i % 2 === 1 ? 'EUR' : 'USD'}`;
      const e = expected.get(key) ?? { outstanding: 0, overdue: 0, count: 0 };
      e.outstanding += outstanding;
      e.overdue += daysLate > 0 ? outstanding : 0;
      e.count++;
      expected.set(key, e);
      const bucket = daysLate <= 0 ? 'notDue' : daysLate <= 30 ? 'days1To30' : daysLate <= 60 ? 'days31To60' : daysLate <= 90 ? 'days61To90' : 'over90';
      const bucketKey = `${i % 2 === 1 ? 'EUR' : 'USD'}/${bucket}`;
      buckets.set(bucketKey, (buckets.get(bucketKey) ?? 0) + outstanding);
    }
    const summary = await big.owner.http.get(`${big.base}/receivables/summary?asOf=${AS_OF}`);
    expect(summary.status).toBe(200);
    const got = new Map<string, { outstanding: number; overdue: number; count: number }>();
    for (const item of summary.body.items) {
      for (const b of item.balances) got.set(`${item.companyName}/${b.currency}`, { outstanding: b.outstandingCents, overdue: b.overdueCents, count: b.openInvoiceCount });
    }
    expect(got).toEqual(expected);
    const total = (currency: string) => [...expected].filter(([k]) => k.endsWith(currency)).reduce((s, [, v]) => s + v.outstanding, 0);
    expect(summary.body.totals.map((t: any) => [t.currency, t.outstandingCents, t.companyCount])).toEqual([
      ['EUR', total('EUR'), 3],
      ['USD', total('USD'), 3],
    ]);
    const ageing = await big.owner.http.get(`${big.base}/receivables/ageing?asOf=${AS_OF}`);
    for (const line of ageing.body.currencies) {
      for (const [bucket, figures] of Object.entries(line.buckets) as [string, { outstandingCents: number }][]) {
        expect(figures.outstandingCents, `${line.currency}/${bucket}`).toBe(buckets.get(`${line.currency}/${bucket}`) ?? 0);
      }
    }
  });
});
