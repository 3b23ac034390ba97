/**
 * REST routes of receivables management (APP-2), for every member role (RECORD_ROLES):
 *   GET  /api/v1/tenants/{id}/receivables/summary?asOf=&limit=&cursor=   outstanding per company and currency
 *   GET  /api/v1/tenants/{id}/receivables/ageing?asOf=&companyId=        ageing buckets per currency
 *   GET  /api/v1/tenants/{id}/receivables/dso?from=&to=                  days sales outstanding per currency
 *   GET  /api/v1/tenants/{id}/receivables/overdue?asOf=&limit=&cursor=   overdue invoices, oldest due first
 *   POST /api/v1/tenants/{id}/invoices/{invoiceId}/reminders             send a payment reminder → 201
 *   GET  /api/v1/tenants/{id}/invoices/{invoiceId}/reminders             the invoice's reminder log
 * `asOf` defaults to today in Paris. Thin: validate (strict zod), enter the workspace, run the SQL
 * (receivables-sql.ts) or the reminder service (reminders.ts).
 */
import { z } from 'zod';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import type { Clock } from '../../lib/clock.ts';
import { badRequest } from '../../lib/errors.ts';
import { daysBetween, parisDate } from '../../lib/paris-date.ts';
import { isoDate } from './record-spec.ts';
import { AGEING_BUCKETS, MAX_PAGE, overdueInvoices, receivablesAgeing, receivablesDso, receivablesSummary } from './receivables-sql.ts';
import type { ReminderService } from './reminders.ts';
import type { WorkspaceAccess } from './workspace-access.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const tags = ['workspace'];
/** The longest DSO period. */
export const MAX_DSO_DAYS = 366;

const tenantParams = z.object({ id: z.string().max(100) });
const invoiceParams = z.object({ id: z.string().max(100), invoiceId: z.string().max(100) });
const page = { limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(), cursor: z.string().max(1000).optional() };
const asOf = isoDate.optional().describe('The date the figures are computed for (YYYY-MM-DD); default: today in Paris.');

const balance = z.object({ currency: z.string(), openInvoiceCount: z.number().int(), outstandingCents: z.number().int(), overdueCents: z.number().int(), oldestOverdueDueDate: z.string().nullable() });
const summaryView = z.object({
  asOf: z.string(),
  items: z.array(z.object({ companyId: z.string(), companyName: z.string(), balances: z.array(balance) })),
  totals: z.array(balance.extend({ companyCount: z.number().int() })),
  nextCursor: z.string().nullable(),
});
const figures = z.object({ invoiceCount: z.number().int(), outstandingCents: z.number().int() });
const ageingView = z.object({
  asOf: z.string(),
  companyId: z.string().nullable(),
  currencies: z.array(z.object({ currency: z.string(), buckets: z.object(Object.fromEntries(AGEING_BUCKETS.map((b) => [b, figures])) as Record<(typeof AGEING_BUCKETS)[number], typeof figures>), total: figures })),
});
const dsoView = z.object({
  from: z.string(),
  to: z.string(),
  days: z.number().int(),
  currencies: z.array(z.object({ currency: z.string(), receivablesCents: z.number().int(), creditSalesCents: z.number().int(), dso: z.number().nullable(), reason: z.enum(['no_sales']).nullable() })),
});
const overdueView = z.object({
  asOf: z.string(),
  items: z.array(
    z.object({
      invoiceId: z.string(),
      number: z.string(),
      companyId: z.string(),
      companyName: z.string(),
      currency: z.string(),
      amountCents: z.number().int(),
      outstandingCents: z.number().int(),
      dueDate: z.string(),
      daysLate: z.number().int(),
      lastReminderAt: z.string().nullable(),
    }),
  ),
  nextCursor: z.string().nullable(),
});
const reminderView = z.object({
  id: z.string(),
  invoiceId: z.string(),
  contactId: z.string().nullable(),
  recipientEmail: z.string(),
  locale: z.enum(['fr', 'en']),
  status: z.enum(['pending', 'queued']),
  mailId: z.string().nullable(),
  sentByUserId: z.string().nullable(),
  createdAt: z.string(),
  queuedAt: z.string().nullable(),
});

const DSO_DESCRIPTION = `Days sales outstanding over the period from \`from\` to \`to\` (both included, at most ${MAX_DSO_DAYS} days), per currency:

DSO = (receivables outstanding at the end of the period ÷ credit sales invoiced during the period) × number of days in the period.

Receivables outstanding at the end of the period: amounts of the invoices issued on or before \`to\`, not cancelled, minus the payments made on or before \`to\`. Credit sales: amounts of the invoices issued from \`from\` to \`to\`, not cancelled. With no sales in a currency, \`dso\` is null and \`reason\` is \`no_sales\`.`;

export function workspaceReceivablesRoutes(access: WorkspaceAccess, reminders: ReminderService, clock: Clock): RoutePlugin {
  const today = () => parisDate(clock.now());
  return async (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/api/v1/tenants/:id/receivables/summary',
      {
        schema: {
          tags,
          summary: 'Outstanding receivables per company and currency, with totals per currency',
          description: 'Per company (by name, keyset pages of `limit`, at most 200) and currency: invoices still owed on `asOf`, outstanding and overdue cents, the oldest overdue due date. `totals` cover every company.',
          params: tenantParams,
          querystring: z.object({ asOf, ...page }).strict(),
          security,
          response: { 200: summaryView },
        },
      },
      async (request) => access.read(requireUser(request), request.params.id, (client) => receivablesSummary(client, { ...request.query, asOf: request.query.asOf ?? today() })),
    );
    r.get(
      '/api/v1/tenants/:id/receivables/ageing',
      {
        schema: {
          tags,
          summary: 'Ageing of receivables per currency: not due, 1–30, 31–60, 61–90, over 90 days past due',
          params: tenantParams,
          querystring: z.object({ asOf, companyId: z.uuid().optional() }).strict(),
          security,
          response: { 200: ageingView },
        },
      },
      async (request) => access.read(requireUser(request), request.params.id, (client) => receivablesAgeing(client, { asOf: request.query.asOf ?? today(), companyId: request.query.companyId })),
    );
    r.get(
      '/api/v1/tenants/:id/receivables/dso',
      {
        schema: { tags, summary: 'Days sales outstanding (DSO) over a period, per currency', description: DSO_DESCRIPTION, params: tenantParams, querystring: z.object({ from: isoDate, to: isoDate }).strict(), security, response: { 200: dsoView } },
      },
      async (request) => {
        const { from, to } = request.query;
        const days = daysBetween(from, to) + 1;
        if (days < 1 || days > MAX_DSO_DAYS) throw badRequest('invalid_period', `The period must run forwards (from on or before to) and last at most ${MAX_DSO_DAYS} days.`, { days });
        return access.read(requireUser(request), request.params.id, (client) => receivablesDso(client, { from, to }));
      },
    );
    r.get(
      '/api/v1/tenants/:id/receivables/overdue',
      {
        schema: {
          tags,
          summary: 'Overdue invoices (owed on asOf and due before it), oldest due date first, cursor pagination',
          params: tenantParams,
          querystring: z.object({ asOf, ...page }).strict(),
          security,
          response: { 200: overdueView },
        },
      },
      async (request) => access.read(requireUser(request), request.params.id, (client) => overdueInvoices(client, { ...request.query, asOf: request.query.asOf ?? today() })),
    );
    r.post(
      '/api/v1/tenants/:id/invoices/:invoiceId/reminders',
      {
        schema: {
          tags,
          summary: 'Send a payment reminder for an overdue invoice (at most one per invoice per 24 hours)',
          description:
            'E-mails the given contact (of the invoice’s company, with an e-mail address), or else the company’s first contact with one (by last name), in the language of the workspace settings. The reminder is logged before its e-mail is queued; an interrupted one is completed by the next reminder request or listing.',
          params: invoiceParams,
          body: z.object({ contactId: z.uuid().optional() }).strict().nullish(),
          security,
          response: { 201: reminderView },
        },
      },
      async (request, reply) => {
        // A plain connection: the reminder commits its log row before the e-mail is queued.
        const reminder = await access.read(requireUser(request), request.params.id, (client, target) => reminders.send(client, target, request.params.invoiceId, request.body?.contactId));
        return reply.code(201).send(reminder);
      },
    );
    r.get(
      '/api/v1/tenants/:id/invoices/:invoiceId/reminders',
      { schema: { tags, summary: 'The payment reminders of an invoice, newest first', params: invoiceParams, security, response: { 200: z.object({ items: z.array(reminderView) }) } } },
      async (request) => ({ items: await access.read(requireUser(request), request.params.id, (client, target) => reminders.list(client, target, request.params.invoiceId)) }),
    );
  };
}
