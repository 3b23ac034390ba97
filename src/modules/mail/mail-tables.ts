/** Control-plane table of the mail module: the outbox and delivery record. */
import type { Generated } from 'kysely';
import type { Locale } from '../accounts/accounts-tables.ts';

export interface MailOutboxTable {
  id: Generated<string>;
  to_address: string;
  user_id: string | null;
  template: string;
  locale: Locale;
  subject: string;
  body_text: string;
  transport: 'outbox' | 'smtp';
  status: 'stored' | 'pending' | 'sending' | 'sent' | 'failed';
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
  /** When a pending message may next be tried (back-off after failures). */
  next_attempt_at: Date | null;
  /** While 'sending': the claim's deadline; past it, another worker may take the message over. */
  locked_until: Date | null;
  /** Idempotency key of the sender (unique when set): sending again with it queues nothing new. */
  dedupe_key: string | null;
}

export interface MailTables {
  mail_outbox: MailOutboxTable;
}
