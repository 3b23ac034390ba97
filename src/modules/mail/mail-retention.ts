/**
 * PRV-4: the retention category of the mail module. A message is kept (as proof of the notices
 * Havre sent) for `config.retention.rules.mail_outbox_delivered.period` after its delivery, or
 * after it was stored in the local outbox; messages still in delivery are never touched.
 */
import { sql } from 'kysely';
import { deleteRule, type RetentionCategory } from '../retention/retention-registry.ts';

/** The mail module's retention categories. */
export function mailRetentionCategories(): RetentionCategory[] {
  // The clock and the predicate match the partial index mail_outbox_done_idx.
  return [deleteRule('mail_outbox_delivered', 'mail_outbox', 'COALESCE(sent_at, created_at)', sql`status IN ('sent', 'stored', 'failed')`)];
}
