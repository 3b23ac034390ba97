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
  status: 'stored' | 'pending' | 'sent' | 'failed';
  attempts: Generated<number>;
  last_error: string | null;
  created_at: Date;
  sent_at: Date | null;
}

export interface MailTables {
  mail_outbox: MailOutboxTable;
}
