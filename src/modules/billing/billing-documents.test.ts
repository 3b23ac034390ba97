/** BIL-9 against a real PostgreSQL: gapless numbering under concurrency, immutability in the database, credit notes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember } from '../../../test/factories.ts';
import { createDb } from '../../db/db.ts';
import { createBillingDocuments, type BillingDocuments } from './billing-documents.ts';
import { vatTreatment } from './vat.ts';

let ctx: TestContext;
let docs: BillingDocuments;
let customerId: string;
const seller = { code: 'havre-sas', identity: { name: 'Havre SAS', siren: '123456789' }, invoicePrefix: 'F', creditNotePrefix: 'AV', paymentTermsDays: 30 };
const line = (cents: number) => ({ labelFr: 'Abonnement', labelEn: 'Subscription', quantity: 1, unitCents: cents, amountCents: cents });
const fr = vatTreatment({ country: 'FR' });

beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-12-01T00:05:00+01:00') });
  docs = createBillingDocuments({ db: ctx.core.db, clock: ctx.core.clock, seller });
  customerId = (await createMember(ctx)).customerId;
});
afterAll(async () => ctx?.close());

describe('billing documents', () => {
  it('[BIL-9] drafts have no number; issuing numbers them in sequence; the due date follows the payment terms', async () => {
    const { document: draft } = await docs.createDraft({ customerId, lines: [line(4900)], treatment: fr, buyer: { name: 'Atelier' } });
    expect(draft.number).toBeNull();
    const issued = await docs.issue(draft.id);
    expect(issued.number).toBe('F000001');
    expect([issued.issue_date, issued.due_date, issued.net_cents, issued.vat_cents, issued.gross_cents]).toEqual(['2026-12-01', '2026-12-31', '4900', '980', '5880']);
    expect((await docs.issue(draft.id)).number).toBe('F000001'); // issuing again changes nothing
  });

  it('[BIL-9] 8 workers issuing 120 invoices at once, with failures rolled back midway: numbers 2..121, no gap, no duplicate', async () => {
    const drafts = await Promise.all(Array.from({ length: 130 }, () => docs.createDraft({ customerId, lines: [line(100)], treatment: fr, buyer: {} }).then((r) => r.document.id)));
    // Separate connections, as separate nodes would have.
    const pools = Array.from({ length: 8 }, () => createDb((ctx.core.config.databaseUrl as string), 2));
    const workers = pools.map((db) => createBillingDocuments({ db, clock: ctx.core.clock, seller }));
    let failures = 0;
    await Promise.all(
      workers.map(async (w, i) => {
        for (let j = i; j < drafts.length; j += workers.length) {
          if (j % 13 === 0) {
            // A transaction that takes a number and then fails: its number must come back.
            await pools[i]!.transaction().execute(async (trx) => {
              await w.issue(drafts[j]!, {}, trx);
              throw new Error('crash after numbering');
            }).catch(() => failures++);
          } else await w.issue(drafts[j]!);
        }
      }),
    );
    await Promise.all(pools.map((p) => p.destroy()));
    const issued = await ctx.core.db.selectFrom('billing_documents').select(['sequence_value', 'number']).where('state', '=', 'issued').where('kind', '=', 'invoice').orderBy('sequence_value').execute();
    const values = issued.map((r) => Number(r.sequence_value));
    expect(failures).toBe(10);
    expect(values).toEqual(Array.from({ length: 121 }, (_, k) => k + 1));
    expect(new Set(issued.map((r) => r.number)).size).toBe(121);
  });

  it('[BIL-9] an issued invoice cannot be changed, deleted or truncated, even by direct SQL; a credit note corrects it with its own sequence', async () => {
    const { document } = await docs.createDraft({ customerId, lines: [line(9900)], treatment: fr, buyer: {} });
    const invoice = await docs.issue(document.id);
    await expect(ctx.core.db.updateTable('billing_documents').set({ net_cents: '1' }).where('id', '=', invoice.id).execute()).rejects.toThrow(/issued/);
    await expect(ctx.core.db.deleteFrom('billing_documents').where('id', '=', invoice.id).execute()).rejects.toThrow(/issued/);
    await expect(ctx.core.db.executeQuery({ sql: 'TRUNCATE billing_documents CASCADE', parameters: [], query: { kind: 'RawNode' } } as never)).rejects.toThrow(/truncated/);
    const credit = await docs.creditNote(invoice.id, { lines: [line(4900)], treatment: fr, reason: 'partial refund' });
    expect(credit.number).toBe('AV000001');
    expect(credit.corrects_id).toBe(invoice.id);
    await expect(docs.creditNote(invoice.id, { lines: [line(5001)], treatment: fr, reason: 'too much' })).rejects.toMatchObject({ code: 'credit_exceeds_invoice' });
    // A draft may still be deleted.
    const { document: draft } = await docs.createDraft({ customerId, lines: [line(1)], treatment: fr, buyer: {} });
    await ctx.core.db.deleteFrom('billing_documents').where('id', '=', draft.id).execute();
  });

  it('[BIL-9] one document per idempotency key: a billing run made twice makes one invoice', async () => {
    const key = `monthly:sub-1:2026-12`;
    const a = await docs.createDraft({ customerId, lines: [line(4900)], treatment: fr, buyer: {}, idempotencyKey: key });
    const b = await docs.createDraft({ customerId, lines: [line(4900)], treatment: fr, buyer: {}, idempotencyKey: key });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.document.id).toBe(a.document.id);
  });
});
