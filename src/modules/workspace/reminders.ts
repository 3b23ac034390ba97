/**
 * Payment reminders (APP-2): an e-mail to a contact of the company that owes an overdue invoice,
 * logged in the tenant's `reminders` table, at most one per invoice per 24 hours.
 *
 * Two databases take part — the log row lives in the tenant's database, the e-mail in Havre's
 * outbox (control plane) — and no transaction spans both. So the order is:
 *   1. in one tenant transaction: lock the invoice, check it (open, overdue, no reminder in the
 *      last 24 h), choose the recipient, INSERT the reminder 'pending'; COMMIT;
 *   2. queue the e-mail in the outbox with a deterministic dedupe key (the reminder's id);
 *   3. mark the reminder 'queued' with the mail id (compare-and-set on 'pending').
 * A crash after 1 leaves a pending row: any reminder request or reminder listing of the tenant
 * completes pending rows older than STALE_MS by running 2 and 3 again. Step 2 is idempotent (the
 * outbox holds at most one message per key), so a crash after 2 — mail queued, row still
 * pending — is completed with the same mail: never two e-mails, never an e-mail without its log
 * line. The text is rendered from the facts as of the reminder's Paris date, so a completed
 * reminder says what the interrupted one would have said.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { daysBetween, parisDate } from '../../lib/paris-date.ts';
import type { Mailer } from '../mail/mail-service.ts';
import { isoTimestamp } from './receivables-sql.ts';
import type { WorkspaceTarget } from './workspace-access.ts';

export const REMINDER_TEMPLATE = 'workspace.payment_reminder';
/** At most one reminder per invoice in this window. */
export const REMINDER_INTERVAL_MS = 24 * 3_600_000;
/** A pending reminder older than this was interrupted (a live request takes milliseconds). */
export const STALE_MS = 2 * 60_000;
/** Pending reminders completed per request, so that one request stays short. */
const COMPLETE_BATCH = 20;

type Locale = 'fr' | 'en';

export interface ReminderView {
  id: string;
  invoiceId: string;
  contactId: string | null;
  recipientEmail: string;
  locale: Locale;
  status: 'pending' | 'queued';
  mailId: string | null;
  sentByUserId: string | null;
  createdAt: string;
  queuedAt: string | null;
}

const REMINDER_COLUMNS = `id, invoice_id AS "invoiceId", contact_id AS "contactId", recipient_email AS "recipientEmail", locale, status,
  mail_id AS "mailId", sent_by_user_id AS "sentByUserId", ${isoTimestamp('created_at')} AS "createdAt", ${isoTimestamp('queued_at')} AS "queuedAt"`;

// ---------------------------------------------------------------------------------------------
// The e-mail, in French and English (our own wording).

export interface ReminderFacts {
  invoiceNumber: string;
  outstandingCents: number;
  currency: string;
  dueDate: string;
  daysLate: number;
  senderName: string;
}

/** `1 234,56 €` (fr) / `€1,234.56` (en), from integer cents. */
export function formatAmount(cents: number, currency: string, locale: Locale): string {
  return new Intl.NumberFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { style: 'currency', currency }).format(cents / 100);
}

/** `31 octobre 2026` (fr) / `31 October 2026` (en). */
export function formatDate(date: string, locale: Locale): string {
  return new Intl.DateTimeFormat(locale === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long', timeZone: 'UTC' }).format(new Date(`${date}T00:00:00Z`));
}

export function renderPaymentReminder(locale: Locale, f: ReminderFacts): { subject: string; text: string } {
  const amount = formatAmount(f.outstandingCents, f.currency, locale);
  const due = formatDate(f.dueDate, locale);
  if (locale === 'fr') {
    const late = f.daysLate === 1 ? '1 jour' : `${f.daysLate} jours`;
    return {
      subject: `Rappel : facture ${f.invoiceNumber} en attente de règlement`,
      text: [
        'Bonjour,',
        '',
        `Sauf erreur de notre part, la facture ${f.invoiceNumber}, échue le ${due}, n’est pas encore réglée : il reste ${amount} à payer (${late} de retard).`,
        '',
        'Si votre règlement est déjà en route, merci de ne pas tenir compte de ce message. Dans le cas contraire, nous vous remercions de bien vouloir y procéder dans les meilleurs délais.',
        '',
        'Bien cordialement,',
        f.senderName,
      ].join('\n'),
    };
  }
  const late = f.daysLate === 1 ? '1 day' : `${f.daysLate} days`;
  return {
    subject: `Reminder: invoice ${f.invoiceNumber} is awaiting payment`,
    text: [
      'Hello,',
      '',
      `Unless we are mistaken, invoice ${f.invoiceNumber}, due on ${due}, has not been paid yet: ${amount} remains outstanding (${late} late).`,
      '',
      'If your payment is already on its way, please disregard this message. Otherwise, we would be grateful if you could settle it at your earliest convenience.',
      '',
      'Kind regards,',
      f.senderName,
    ].join('\n'),
  };
}

// ---------------------------------------------------------------------------------------------
// The service.

export interface ReminderDeps {
  mailer: Pick<Mailer, 'send'>;
  clock: Clock;
  /** The tenant's name (control plane): the sender's name when the settings give none. */
  tenantName(tenantId: string): Promise<string>;
}

/** `tenantName` of ReminderDeps, read from the control plane. */
export function tenantNameFrom(db: Db): (tenantId: string) => Promise<string> {
  return async (tenantId) => (await db.selectFrom('tenants').select('name').where('id', '=', tenantId).executeTakeFirst())?.name ?? '';
}

/** The outbox key of a reminder's e-mail: the same reminder can never queue two e-mails. */
export function reminderDedupeKey(tenantId: string, reminderId: string): string {
  return `${REMINDER_TEMPLATE}:${tenantId}:${reminderId}`;
}

const invoiceNotFound = () => notFound('invoice_not_found', 'No such invoice.');
const noContactEmail = () => conflict('no_contact_email', 'No contact of this company has an e-mail address: add one, or choose a contact who has one.');

interface PendingRow {
  id: string;
  invoice_id: string;
  recipient_email: string;
  locale: Locale;
  created_at: Date;
}

async function readReminder(client: pg.ClientBase, id: string): Promise<ReminderView> {
  const { rows } = await client.query<ReminderView>(`SELECT ${REMINDER_COLUMNS} FROM reminders WHERE id = $1`, [id]);
  if (!rows[0]) throw notFound('reminder_not_found', 'No such reminder.');
  return rows[0];
}

/** The recipient: the given contact (of the invoice's company, with an e-mail), else the company's first contact with one. */
async function chooseRecipient(client: pg.ClientBase, companyId: string, contactId: string | undefined): Promise<{ id: string; email: string }> {
  if (contactId !== undefined) {
    const { rows } = await client.query<{ id: string; company_id: string | null; email: string | null }>('SELECT id, company_id, email FROM contacts WHERE id = $1', [contactId]);
    const contact = rows[0];
    if (!contact) throw notFound('contact_not_found', 'No such contact.');
    if (contact.company_id !== companyId) throw conflict('contact_not_of_company', 'This contact does not belong to the company the invoice is addressed to.');
    if (!contact.email) throw noContactEmail();
    return { id: contact.id, email: contact.email };
  }
  const { rows } = await client.query<{ id: string; email: string }>(
    `SELECT id, email FROM contacts WHERE company_id = $1 AND email IS NOT NULL AND email <> '' ORDER BY last_name, id LIMIT 1`,
    [companyId],
  );
  if (!rows[0]) throw noContactEmail();
  return rows[0];
}

export function createReminderService(deps: ReminderDeps) {
  /** Steps 2 and 3 of the file comment, for one pending reminder (idempotent). */
  async function complete(client: pg.ClientBase, target: WorkspaceTarget, row: PendingRow): Promise<void> {
    const day = parisDate(row.created_at);
    const { rows } = await client.query<{ number: string; currency: string; due_date: string; outstanding: string; sender_name: string | null }>(
      `SELECT i.number, i.currency, i.due_date::text AS due_date,
              i.amount_cents - i.paid_cents + coalesce((SELECT sum(amount_cents) FROM payments WHERE invoice_id = i.id AND paid_on > $2::date), 0) AS outstanding,
              (SELECT reminder_sender_name FROM workspace_settings) AS sender_name
         FROM invoices i WHERE i.id = $1`,
      [row.invoice_id, day],
    );
    const invoice = rows[0];
    if (!invoice) return; // deleted meanwhile: its reminders went with it (ON DELETE CASCADE)
    const message = renderPaymentReminder(row.locale, {
      invoiceNumber: invoice.number,
      outstandingCents: Number(invoice.outstanding),
      currency: invoice.currency,
      dueDate: invoice.due_date,
      daysLate: daysBetween(invoice.due_date, day),
      senderName: invoice.sender_name || (await deps.tenantName(target.tenantId)),
    });
    const mail = await deps.mailer.send({
      to: row.recipient_email,
      template: REMINDER_TEMPLATE,
      locale: row.locale,
      subject: message.subject,
      text: message.text,
      userId: null,
      dedupeKey: reminderDedupeKey(target.tenantId, row.id),
    });
    // Compare-and-set: a concurrent completion may have marked it already (with the same mail).
    await client.query(`UPDATE reminders SET status = 'queued', mail_id = $2, queued_at = $3 WHERE id = $1 AND status = 'pending'`, [row.id, mail.id, deps.clock.now()]);
  }

  /** Completes the tenant's reminders left pending for more than STALE_MS (a crash between the steps). */
  async function completeStale(client: pg.ClientBase, target: WorkspaceTarget): Promise<number> {
    const { rows } = await client.query<PendingRow>(
      `SELECT id, invoice_id, recipient_email, locale, created_at FROM reminders WHERE status = 'pending' AND created_at < $1 ORDER BY created_at LIMIT ${COMPLETE_BATCH}`,
      [new Date(deps.clock.now().getTime() - STALE_MS)],
    );
    for (const row of rows) await complete(client, target, row);
    return rows.length;
  }

  /** Step 1 of the file comment, in its own transaction; returns the committed pending row. */
  async function recordPending(client: pg.ClientBase, target: WorkspaceTarget, invoiceId: string, contactId: string | undefined): Promise<PendingRow> {
    const now = deps.clock.now();
    const today = parisDate(now);
    await client.query('BEGIN');
    try {
      // The row lock serialises reminders of one invoice: the 24-hour check below cannot be outrun.
      const { rows } = await client.query<{ company_id: string; status: string; due_date: string }>('SELECT company_id, status, due_date::text AS due_date FROM invoices WHERE id = $1 FOR UPDATE', [invoiceId]);
      const invoice = rows[0];
      if (!invoice) throw invoiceNotFound();
      if (invoice.status !== 'open') throw conflict('invoice_not_open', `This invoice is ${invoice.status}: only open invoices are reminded.`, { status: invoice.status });
      if (invoice.due_date >= today) throw conflict('invoice_not_overdue', `This invoice is not overdue: it is due on ${invoice.due_date}.`, { dueDate: invoice.due_date });
      const last = (await client.query<{ created_at: Date }>('SELECT created_at FROM reminders WHERE invoice_id = $1 ORDER BY created_at DESC LIMIT 1', [invoiceId])).rows[0];
      if (last && now.getTime() - last.created_at.getTime() < REMINDER_INTERVAL_MS) {
        const retryAt = new Date(last.created_at.getTime() + REMINDER_INTERVAL_MS);
        throw conflict('reminder_too_soon', `This invoice was reminded less than 24 hours ago; the next reminder can be sent from ${retryAt.toISOString()}.`, {
          retryAt: retryAt.toISOString(),
          retryAfterSeconds: Math.ceil((retryAt.getTime() - now.getTime()) / 1000),
        });
      }
      const recipient = await chooseRecipient(client, invoice.company_id, contactId);
      const inserted = await client.query<PendingRow>(
        `INSERT INTO reminders (id, invoice_id, contact_id, recipient_email, locale, status, sent_by_user_id, created_at)
         SELECT $1, $2, $3, $4, reminder_locale, 'pending', $5, $6 FROM workspace_settings
         RETURNING id, invoice_id, recipient_email, locale, created_at`,
        [randomUUID(), invoiceId, recipient.id, recipient.email, target.userId, now],
      );
      await client.query('COMMIT');
      return inserted.rows[0]!;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  return {
    completeStale,

    /**
     * Sends a payment reminder for an overdue invoice (see the file comment for the order).
     * `client` must be a plain connection (no transaction open): this manages its own.
     */
    async send(client: pg.ClientBase, target: WorkspaceTarget, invoiceId: string, contactId?: string): Promise<ReminderView> {
      if (!isUuid(invoiceId)) throw invoiceNotFound();
      await completeStale(client, target);
      const pending = await recordPending(client, target, invoiceId, contactId);
      await complete(client, target, pending);
      return readReminder(client, pending.id);
    },

    /** The reminders of one invoice, newest first (at most one a day, so the list stays short). */
    async list(client: pg.ClientBase, target: WorkspaceTarget, invoiceId: string): Promise<ReminderView[]> {
      if (!isUuid(invoiceId) || (await client.query('SELECT 1 FROM invoices WHERE id = $1', [invoiceId])).rowCount !== 1) throw invoiceNotFound();
      await completeStale(client, target);
      const { rows } = await client.query<ReminderView>(`SELECT ${REMINDER_COLUMNS} FROM reminders WHERE invoice_id = $1 ORDER BY created_at DESC, id LIMIT 1000`, [invoiceId]);
      return rows;
    },
  };
}

export type ReminderService = ReturnType<typeof createReminderService>;
