import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { reminderDedupeKey, REMINDER_TEMPLATE } from './reminders.ts';
import { addMember, createRecord, createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

// Today in Paris: 2026-12-10.
const NOW = new Date('2026-12-10T09:00:00Z');
const HOUR = 3_600_000;

let ctx: TestContext;
let ws: Workspace;
let acme: string;
let other: string;
/** Acme's contacts: Dupont (first with an e-mail by last name), Martin (no e-mail), Zola. */
let dupont: { id: string; email: string };
let martin: string;
let zola: { id: string; email: string };
let otherContact: string;
let sequence = 0;

const unique = (name: string) => `${name}-${randomUUID().slice(0, 8)}@client.example`;
/** French amounts use (narrow) no-break spaces: compare with plain spaces. */
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, ' ');

async function overdueInvoice(amountCents = 123_456, dueDate = '2026-11-30', companyId = acme): Promise<string> {
  const inv = await createRecord(ws.owner.http, `${ws.base}/invoices`, { companyId, number: `R-${++sequence}`, issueDate: '2026-10-31', dueDate, amountCents });
  return inv.id;
}

async function remindersOf(invoiceId: string): Promise<any[]> {
  return tenantQuery(ctx, ws, 'SELECT id, status, mail_id, recipient_email, locale, queued_at FROM reminders WHERE invoice_id = $1 ORDER BY created_at', [invoiceId]);
}

/** A reminder row as a crash leaves it: committed 'pending', `ageMs` old, its mail not recorded. */
async function insertPending(invoiceId: string, email: string, ageMs: number): Promise<string> {
  const id = randomUUID();
  await tenantQuery(ctx, ws, `INSERT INTO reminders (id, invoice_id, recipient_email, locale, status, created_at) VALUES ($1, $2, $3, 'fr', 'pending', $4)`, [id, invoiceId, email, new Date(NOW.getTime() - ageMs)]);
  return id;
}

async function outboxCount(): Promise<number> {
  const row = await ctx.core.db.selectFrom('mail_outbox').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

beforeAll(async () => {
  ctx = await createTestContext({ now: NOW });
  await registerServers(ctx);
  ws = await createWorkspace(ctx, { name: 'Atelier Durand' });
  const http = ws.owner.http;
  acme = (await createRecord(http, `${ws.base}/companies`, { name: 'Acme' })).id;
  other = (await createRecord(http, `${ws.base}/companies`, { name: 'Other' })).id;
  const contact = async (companyId: string, lastName: string, email: string | null) => (await createRecord(http, `${ws.base}/contacts`, { companyId, lastName, email })).id as string;
  zola = { email: unique('zola'), id: '' };
  zola.id = await contact(acme, 'Zola', zola.email);
  martin = await contact(acme, 'Martin', null);
  dupont = { email: unique('dupont'), id: '' };
  dupont.id = await contact(acme, 'Dupont', dupont.email);
  otherContact = await contact(other, 'Autre', unique('autre'));
});
afterAll(async () => ctx?.close());

describe('payment reminders', () => {
  it('[APP-2] a reminder is sent in French to the first contact with an e-mail, logged, then limited to one per 24 hours', async () => {
    const invoiceId = await overdueInvoice(123_456);
    await createRecord(ws.owner.http, `${ws.base}/invoices/${invoiceId}/payments`, { paidOn: '2026-12-01', amountCents: 10_000 });
    const res = await ws.owner.http.post(`${ws.base}/invoices/${invoiceId}/reminders`);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body).toMatchObject({ invoiceId, contactId: dupont.id, recipientEmail: dupont.email, locale: 'fr', status: 'queued', sentByUserId: ws.owner.userId });
    expect(Date.parse(res.body.createdAt)).toBe(NOW.getTime());
    expect(res.body.queuedAt).not.toBeNull();

    const mails = await ctx.core.mailer.list({ to: dupont.email });
    expect(mails).toHaveLength(1);
    expect(mails[0]!.id).toBe(res.body.mailId);
    const mail = (await ctx.core.mailer.show(res.body.mailId))!;
    expect(mail).toMatchObject({ template: REMINDER_TEMPLATE, locale: 'fr', subject: expect.stringContaining(`R-${sequence}`) });
    const text = plain(mail.text);
    expect(text).toContain('1 134,56 €'); // 1 234,56 € less the 100 € paid
    expect(text).toContain('30 novembre 2026');
    expect(text).toContain('10 jours de retard');
    expect(text).toContain('Atelier Durand'); // no sender name in the settings: the tenant's name

    const again = await ws.owner.http.post(`${ws.base}/invoices/${invoiceId}/reminders`, { contactId: zola.id });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'reminder_too_soon', retryAt: new Date(NOW.getTime() + 24 * HOUR).toISOString(), retryAfterSeconds: 24 * 3600 });
    ctx.clock.advance(24 * HOUR);
    try {
      // The owner's session lasted 24 hours too: a member signed in now.
      const member = await addMember(ctx, ws, 'administrator');
      const next = await member.http.post(`${ws.base}/invoices/${invoiceId}/reminders`, { contactId: zola.id });
      expect(next.status, JSON.stringify(next.body)).toBe(201);
      expect(plain((await ctx.core.mailer.show(next.body.mailId))!.text)).toContain('11 jours de retard');
      const log = await member.http.get(`${ws.base}/invoices/${invoiceId}/reminders`);
      expect(log.body.items.map((r: any) => [r.recipientEmail, r.status])).toEqual([
        [zola.email, 'queued'],
        [dupont.email, 'queued'],
      ]);
      const overdue = await member.http.get(`${ws.base}/receivables/overdue`);
      expect(overdue.body.items.find((i: any) => i.invoiceId === invoiceId).lastReminderAt).toBe(next.body.createdAt);
    } finally {
      ctx.clock.set(NOW);
    }
  });

  it('[APP-2] reminders follow the language and sender name of the settings (English), for any member role', async () => {
    const settings = await ws.owner.http.patch(`${ws.base}/settings`, { reminderLocale: 'en', reminderSenderName: 'Durand Accounts' });
    expect(settings.status).toBe(200);
    try {
      const invoiceId = await overdueInvoice(123_456, '2026-12-09');
      const collaborator = await addMember(ctx, ws, 'collaborator');
      const res = await collaborator.http.post(`${ws.base}/invoices/${invoiceId}/reminders`, { contactId: zola.id });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ recipientEmail: zola.email, locale: 'en', sentByUserId: collaborator.userId });
      const mail = (await ctx.core.mailer.show(res.body.mailId))!;
      expect(mail).toMatchObject({ to: zola.email, locale: 'en', subject: `Reminder: invoice R-${sequence} is awaiting payment` });
      expect(mail.text).toContain('€1,234.56');
      expect(mail.text).toContain('9 December 2026');
      expect(mail.text).toContain('(1 day late)');
      expect(mail.text).toContain('Durand Accounts');
    } finally {
      await ws.owner.http.patch(`${ws.base}/settings`, { reminderLocale: 'fr', reminderSenderName: null });
    }
  });

  it('[APP-2] refused, with nothing logged or mailed: not overdue, not open, contact of another company or without e-mail, unknown ids, bad input', async () => {
    const http = ws.owner.http;
    const dueToday = await overdueInvoice(5_000, '2026-12-10');
    const paid = await overdueInvoice(5_000);
    await createRecord(http, `${ws.base}/invoices/${paid}/payments`, { paidOn: '2026-12-01', amountCents: 5_000 });
    const cancelled = await overdueInvoice(5_000);
    expect((await http.patch(`${ws.base}/invoices/${cancelled}`, { status: 'cancelled' })).status).toBe(200);
    const overdue = await overdueInvoice(5_000);
    const lonely = (await createRecord(http, `${ws.base}/companies`, { name: 'No e-mail' })).id;
    await createRecord(http, `${ws.base}/contacts`, { companyId: lonely, lastName: 'Silent' });
    const lonelyInvoice = await overdueInvoice(5_000, '2026-11-30', lonely);

    const mailsBefore = await outboxCount();
    const remindersBefore = (await tenantQuery(ctx, ws, 'SELECT count(*)::int AS n FROM reminders'))[0].n;
    const cases: [string, unknown, number, string | null][] = [
      [dueToday, undefined, 409, 'invoice_not_overdue'],
      [paid, undefined, 409, 'invoice_not_open'],
      [cancelled, undefined, 409, 'invoice_not_open'],
      [overdue, { contactId: otherContact }, 409, 'contact_not_of_company'],
      [overdue, { contactId: martin }, 409, 'no_contact_email'],
      [lonelyInvoice, undefined, 409, 'no_contact_email'],
      [overdue, { contactId: randomUUID() }, 404, 'contact_not_found'],
      [randomUUID(), undefined, 404, 'invoice_not_found'],
      ['not-a-uuid', undefined, 404, 'invoice_not_found'],
      [overdue, { contactId: 'nope' }, 400, 'invalid_request'],
      [overdue, { contactId: zola.id, urgent: true }, 400, 'invalid_request'],
    ];
    for (const [invoiceId, body, status, code] of cases) {
      const res = await http.post(`${ws.base}/invoices/${invoiceId}/reminders`, body);
      expect([res.status, res.body.code], `${invoiceId} ${JSON.stringify(body)}`).toEqual([status, code]);
    }
    expect(await outboxCount()).toBe(mailsBefore);
    expect((await tenantQuery(ctx, ws, 'SELECT count(*)::int AS n FROM reminders'))[0].n).toBe(remindersBefore);
    expect((await http.get(`${ws.base}/invoices/${randomUUID()}/reminders`)).body.code).toBe('invoice_not_found');
  });

  it('[APP-2] crash safety: a reminder left pending is completed once, with one e-mail, by the next listing — even by two at once', async () => {
    const invoiceId = await overdueInvoice(42_000);
    const email = unique('crash');
    // The crash: the row committed 'pending', the process died before queuing the mail.
    const reminderId = await insertPending(invoiceId, email, 30_000);
    // 30 seconds old: maybe still in flight, left alone.
    expect((await ws.owner.http.get(`${ws.base}/invoices/${invoiceId}/reminders`)).body.items[0].status).toBe('pending');
    expect(await ctx.core.mailer.list({ to: email })).toHaveLength(0);
    // It also counts for the 24-hour limit.
    expect((await ws.owner.http.post(`${ws.base}/invoices/${invoiceId}/reminders`)).body.code).toBe('reminder_too_soon');

    ctx.clock.advance(2 * 60_000);
    try {
      const [a, b] = await Promise.all([ws.owner.http.get(`${ws.base}/invoices/${invoiceId}/reminders`), ws.owner.http.get(`${ws.base}/invoices/${invoiceId}/reminders`)]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const mails = await ctx.core.mailer.list({ to: email });
      expect(mails).toHaveLength(1);
      const [row] = await remindersOf(invoiceId);
      expect(row).toMatchObject({ id: reminderId, status: 'queued', mail_id: mails[0]!.id });
      expect(plain((await ctx.core.mailer.show(mails[0]!.id))!.text)).toContain('420,00 €');
      await ws.owner.http.get(`${ws.base}/invoices/${invoiceId}/reminders`);
      expect(await ctx.core.mailer.list({ to: email })).toHaveLength(1);
    } finally {
      ctx.clock.set(NOW);
    }
  });

  it('[APP-2] crash safety: a reminder whose mail was queued but not recorded is completed with that mail by the next reminder request', async () => {
    const invoiceId = await overdueInvoice(42_000);
    const email = unique('half');
    const reminderId = await insertPending(invoiceId, email, 5 * 60_000);
    // The crash came after step 2: the mail is in the outbox under the reminder's key.
    const queued = await ctx.core.mailer.send({ to: email, template: REMINDER_TEMPLATE, locale: 'fr', subject: 'Rappel', text: '…', userId: null, dedupeKey: reminderDedupeKey(ws.tenantId, reminderId) });
    // Any reminder request of the tenant completes it (this one, for another invoice, is sent too).
    const res = await ws.owner.http.post(`${ws.base}/invoices/${await overdueInvoice(1_000)}/reminders`);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const [row] = await remindersOf(invoiceId);
    expect(row).toMatchObject({ status: 'queued', mail_id: queued.id });
    expect(await ctx.core.mailer.list({ to: email })).toHaveLength(1);
  });
});
