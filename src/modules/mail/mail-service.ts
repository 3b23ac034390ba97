/**
 * The one mailer. Every e-mail is first written to `mail_outbox` in the caller's transaction
 * (outbox pattern): a message exists if and only if the change that caused it committed, and a
 * crash between commit and delivery loses nothing — the next delivery pass sends it.
 *
 * - No SMTP configured (embedded default): messages stay in the outbox with status `stored`; a
 *   user reads them with `havre mail list|show`.
 * - SMTP configured: messages are `pending` until a delivery pass claims one (`sending`), sends it
 *   with nodemailer outside any transaction, and records `sent`, or `pending` again with an
 *   exponential back-off (`retryDelayMs`), or `failed` after MAX_ATTEMPTS. A failing message
 *   waits for its next attempt while later ones go out.
 */
import type { Transporter } from 'nodemailer';
import { sql } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { Locale } from '../accounts/accounts-tables.ts';
import { isUuid } from '../../lib/ids.ts';

/** A message rendered by its module (each module owns its templates, in both languages). */
export interface MailMessage {
  to: string;
  userId?: string | null;
  template: string;
  locale: Locale;
  subject: string;
  text: string;
  /**
   * Idempotency key: when a message with this key is already in the outbox, `send` queues nothing
   * and returns that message's id (for senders that retry after a crash).
   */
  dedupeKey?: string;
}

export interface OutboxEntry {
  id: string;
  to: string;
  template: string;
  locale: Locale;
  subject: string;
  status: string;
  createdAt: Date;
  sentAt: Date | null;
}

export interface Mailer {
  /**
   * Queues `message`; pass the caller's transaction so it commits with the change it reports.
   * With `dedupeKey`, at most one message per key is ever queued (the existing id is returned).
   */
  send(message: MailMessage, trx?: Executor): Promise<{ id: string }>;
  /** Sends pending messages over SMTP (no-op without SMTP). Returns how many were sent. */
  deliverPending(limit?: number): Promise<number>;
  list(options?: { to?: string; limit?: number }): Promise<OutboxEntry[]>;
  show(id: string): Promise<(OutboxEntry & { text: string }) | null>;
  /** Starts a background delivery loop; returns a function that stops it. */
  startDelivery(intervalMs?: number): () => Promise<void>;
}

/** With the back-off below, 10 attempts span about 8.5 hours: an SMTP outage of a few hours loses nothing. */
const MAX_ATTEMPTS = 10;
/** How long a worker may hold a claimed message before another may take it over. */
const CLAIM_MS = 2 * 60_000;

/** Delay before attempt `attempts + 1`: 30 s, 1 min, 2 min… doubling, at most 2 hours. */
export function retryDelayMs(attempts: number): number {
  return Math.min(30_000 * 2 ** (attempts - 1), 2 * 3_600_000);
}

export function createMailer(deps: { db: Db; clock: Clock; from: string; smtpUrl?: string | undefined; onError?: (err: unknown) => void }): Mailer {
  const smtpUrl = deps.smtpUrl;
  // nodemailer is loaded by the first delivery pass, not by every process that queues a message
  // (the CLI) nor by a Havre without SMTP; an address it would refuse still stops the start.
  if (smtpUrl && !/^(smtps?|direct):/i.test(smtpUrl)) throw new Error('mail.smtpUrl must be an smtp:// or smtps:// URL');
  let transport: Promise<Transporter> | null = null;
  const smtp = () => (transport ??= import('nodemailer').then((m) => m.default.createTransport(smtpUrl)));

  const present = (r: { id: string; to_address: string; template: string; locale: Locale; subject: string; status: string; created_at: Date; sent_at: Date | null }): OutboxEntry => ({
    id: r.id,
    to: r.to_address,
    template: r.template,
    locale: r.locale,
    subject: r.subject,
    status: r.status,
    createdAt: r.created_at,
    sentAt: r.sent_at,
  });

  /**
   * Claims one due message: pending and due, or 'sending' whose claim expired (its worker died).
   * A short transaction of its own: no SMTP conversation ever happens with a transaction open.
   */
  const claim = async () => {
    const now = deps.clock.now();
    const result = await sql<{ id: string; to_address: string; subject: string; body_text: string; attempts: number }>`
      UPDATE mail_outbox SET status = 'sending', locked_until = ${new Date(now.getTime() + CLAIM_MS)}
      WHERE id = (
        SELECT id FROM mail_outbox
        WHERE (status = 'pending' AND next_attempt_at <= ${now}) OR (status = 'sending' AND locked_until < ${now})
        ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING id, to_address, subject, body_text, attempts`.execute(deps.db);
    return result.rows[0] ?? null;
  };

  const deliverPending = async (limit = 20): Promise<number> => {
    if (!smtpUrl) return 0;
    const transporter = await smtp();
    let sent = 0;
    for (let i = 0; i < limit; i++) {
      const msg = await claim();
      if (!msg) break;
      const attempts = msg.attempts + 1;
      try {
        await transporter.sendMail({ from: deps.from, to: msg.to_address, subject: msg.subject, text: msg.body_text });
        await deps.db
          .updateTable('mail_outbox')
          .set({ status: 'sent', sent_at: deps.clock.now(), attempts, locked_until: null, last_error: null })
          .where('id', '=', msg.id)
          .execute();
        sent++;
      } catch (err) {
        const failed = attempts >= MAX_ATTEMPTS;
        await deps.db
          .updateTable('mail_outbox')
          .set({
            attempts,
            status: failed ? 'failed' : 'pending',
            next_attempt_at: failed ? null : new Date(deps.clock.now().getTime() + retryDelayMs(attempts)),
            locked_until: null,
            last_error: String((err as Error).message).slice(0, 500),
          })
          .where('id', '=', msg.id)
          .execute();
        deps.onError?.(err);
      }
    }
    return sent;
  };

  return {
    async send(message, trx) {
      const executor = trx ?? deps.db;
      const dedupeKey = message.dedupeKey ?? null;
      const row = await executor
        .insertInto('mail_outbox')
        .values({
          to_address: message.to.toLowerCase(),
          user_id: message.userId ?? null,
          template: message.template,
          locale: message.locale,
          subject: message.subject,
          body_text: message.text,
          transport: smtpUrl ? 'smtp' : 'outbox',
          status: smtpUrl ? 'pending' : 'stored',
          last_error: null,
          created_at: deps.clock.now(),
          sent_at: null,
          next_attempt_at: smtpUrl ? deps.clock.now() : null,
          locked_until: null,
          dedupe_key: dedupeKey,
        })
        .onConflict((oc) => oc.column('dedupe_key').where('dedupe_key', 'is not', null).doNothing())
        .returning('id')
        .executeTakeFirst();
      if (row) return { id: row.id };
      // Only a dedupe key conflicts: the message is already queued (or a concurrent sender just
      // committed it — ON CONFLICT waited for it, so this read sees it).
      const existing = await executor.selectFrom('mail_outbox').select('id').where('dedupe_key', '=', dedupeKey).executeTakeFirstOrThrow();
      return { id: existing.id };
    },

    deliverPending,

    async list(options = {}) {
      let q = deps.db.selectFrom('mail_outbox').selectAll().orderBy('created_at', 'desc').limit(options.limit ?? 50);
      if (options.to) q = q.where('to_address', '=', options.to.toLowerCase());
      return (await q.execute()).map(present);
    },

    async show(id) {
      if (!isUuid(id)) return null;
      const r = await deps.db.selectFrom('mail_outbox').selectAll().where('id', '=', id).executeTakeFirst();
      return r ? { ...present(r), text: r.body_text } : null;
    },

    startDelivery(intervalMs = 2000) {
      if (!smtpUrl) return async () => {};
      let running: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        running = running.then(() => deliverPending().catch((err: unknown) => deps.onError?.(err)));
      }, intervalMs);
      return async () => {
        clearInterval(timer);
        await running;
        await transport?.then((t) => t.close(), () => {});
      };
    },
  };
}
