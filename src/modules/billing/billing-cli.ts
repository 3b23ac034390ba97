/**
 * `havre billing`, `havre invoice`, `havre usage`: the operator's billing tools, acting as `cli`.
 *
 *   billing run --month YYYY-MM         the month's run (idempotent: a second run makes nothing new)
 *   invoice show <number|id>            an issued invoice or credit note, with its lines and totals
 *   invoice pdf <number|id> --out FILE  its PDF (fr|en), written atomically on this machine
 *   usage --tenant <id>                 the tenant's metered month against its plan (MET-3)
 */
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { badRequest, notFound } from '../../lib/errors.ts';
import { parisDate } from '../../lib/paris-date.ts';
import { presentInvoice } from './billing-presenters.ts';
import { money, renderInvoicePdf } from './invoice-pdf.ts';
import { planByCode } from './plans.ts';

const GB = 1_000_000_000;

export function registerBillingCommands(program: Command, run: CliRunner): void {
  const billing = program.command('billing').description('billing runs (BIL-3, BIL-4, BIL-6, BIL-9)');
  billing
    .command('run')
    .description('issue the invoices of a month that are still missing (default: the current Paris month); safe to repeat')
    .option('--month <YYYY-MM>', 'month to invoice')
    .action((opts: { month?: string }) =>
      run(['billing'], async ({ modules, core, say, print }) => {
        const month = opts.month ?? parisDate(core.clock.now()).slice(0, 7);
        if (!/^\d{4}-(0[1-9]|1[0-2])$/.test(month)) throw badRequest('invalid_month', 'give --month as YYYY-MM');
        const outcome = await modules.billing.runMonth(month, (p) => say(`… ${p.invoiced + p.alreadyInvoiced} subscriptions seen, ${p.invoiced} invoiced`));
        print(outcome, (o) =>
          o.invoiced === 0
            ? `${o.month}: nothing new — ${o.alreadyInvoiced} subscription(s) already invoiced`
            : `${o.month}: ${o.invoiced} invoice(s) issued, ${o.alreadyInvoiced} already invoiced, ${o.upgrades} plan upgrade(s) for overuse`,
        );
      }),
    );

  const invoice = program.command('invoice').description('issued invoices and credit notes (BIL-9)');
  invoice
    .command('show <ref>')
    .description('an invoice or credit note by number (e.g. F000012) or id')
    .action((ref: string) =>
      run(['billing'], async ({ modules, print }) => {
        const doc = await modules.billing.documents.findByRef(ref);
        if (!doc || doc.state !== 'issued') throw notFound('invoice_not_found', `No issued invoice or credit note ${ref}.`);
        const buyer = doc.buyer as { name?: string; vatNumber?: string | null };
        print(presentInvoice(doc), (v) =>
          [
            `${v.kind === 'invoice' ? 'Invoice' : 'Credit note'} ${v.number} (${v.id})`,
            `  customer  ${buyer.name ?? v.customerId}${buyer.vatNumber ? `, VAT ${buyer.vatNumber}` : ''}`,
            `  issued    ${v.issueDate}, due ${v.dueDate}; period ${v.periodStart ?? '-'} to ${v.periodEnd ?? '-'}`,
            ...v.lines.map((l) => `  - ${l.labelEn}: ${money(l.amountCents, 'en')}`),
            `  total     ${money(v.netCents, 'en')} excl. VAT + VAT ${v.vatRateBasisPoints / 100} % ${money(v.vatCents, 'en')} = ${money(v.grossCents, 'en')}`,
            ...(v.vatMention ? [`  ${v.vatMention.en}`] : []),
          ].join('\n'),
        );
      }),
    );
  invoice
    .command('pdf <ref>')
    .description('write the PDF of an invoice or credit note')
    .requiredOption('--out <file>', 'where to write it')
    .option('--lang <fr|en>', 'language', 'fr')
    .action((ref: string, opts: { out: string; lang: string }) =>
      run(['billing'], async ({ modules, print }) => {
        if (opts.lang !== 'fr' && opts.lang !== 'en') throw badRequest('invalid_lang', '--lang is fr or en');
        const doc = await modules.billing.documents.findByRef(ref);
        if (!doc || doc.state !== 'issued') throw notFound('invoice_not_found', `No issued invoice or credit note ${ref}.`);
        const corrects = doc.corrects_id ? await modules.billing.documents.get(doc.corrects_id) : undefined;
        const partial = `${opts.out}.partial`;
        try {
          await pipeline(renderInvoicePdf({ document: doc, locale: opts.lang, corrects: corrects ? { number: corrects.number, issueDate: corrects.issue_date } : null }), createWriteStream(partial));
          await rename(partial, opts.out);
        } catch (err) {
          await rm(partial, { force: true });
          throw err;
        }
        print({ number: doc.number, file: opts.out }, (v) => `${v.number} written to ${v.file}`);
      }),
    );

  program
    .command('usage')
    .description('a tenant’s usage this month against its plan, and its past months (MET-1..3)')
    .requiredOption('--tenant <id>', 'tenant id')
    .action((opts: { tenant: string }) =>
      run(['billing', 'metering'], async ({ modules, core, print }) => {
        const tenant = await core.db.selectFrom('tenants').select(['id', 'name', 'plan']).where('id', '=', opts.tenant).executeTakeFirst();
        if (!tenant) throw notFound('tenant_not_found', `No tenant ${opts.tenant}.`);
        const plan = tenant.plan ? planByCode(modules.billing.plans, tenant.plan) : undefined;
        const u = await modules.metering.service.usage(tenant.id, plan, core.clock.now());
        const pct = (a: number, b: number | undefined) => (b ? ` (${Math.round((a / b) * 100)} % of ${b < 1000 ? `${b} h` : `${b / GB} GB`})` : '');
        print({ tenant: tenant.id, plan: plan?.code ?? null, current: u.current, past: u.past }, (v) =>
          [
            `${tenant.name} (${v.tenant}), plan ${v.plan ?? 'none (trial)'}`,
            `  ${v.current.month}: CPU ${v.current.cpuHours.toFixed(3)} h${pct(v.current.cpuHours, plan?.cpuHours)}, database peak ${(v.current.peakDatabaseBytes / GB).toFixed(3)} GB${pct(v.current.peakDatabaseBytes, plan?.databaseBytes)}, storage peak ${(v.current.peakStorageBytes / GB).toFixed(3)} GB${pct(v.current.peakStorageBytes, plan?.storageBytes)}`,
            ...v.past.map((m) => `  ${m.month}: CPU ${m.cpuHours.toFixed(3)} h, database peak ${(m.peakDatabaseBytes / GB).toFixed(3)} GB, storage peak ${(m.peakStorageBytes / GB).toFixed(3)} GB`),
          ].join('\n'),
        );
      }),
    );
}
