/**
 * The workspace's settings (one row, `workspace_settings`): default currency and payment terms of
 * new invoices, language and sender name of payment reminders. Every member reads them; only
 * administrators and owners change them (APP-3, enforced by the route's roles).
 */
import type pg from 'pg';
import { z } from 'zod';
import { badRequest } from '../../lib/errors.ts';
import { currency, optionalText } from './record-spec.ts';

export const settingsView = z.object({
  defaultCurrency: z.string(),
  paymentTermsDays: z.number().int(),
  reminderLocale: z.enum(['fr', 'en']),
  reminderSenderName: z.string().nullable(),
  updatedAt: z.iso.datetime().nullable(),
});
export type SettingsView = z.infer<typeof settingsView>;

export const settingsBody = z
  .object({
    defaultCurrency: currency.optional(),
    paymentTermsDays: z.number().int().min(0).max(365).optional(),
    reminderLocale: z.enum(['fr', 'en']).optional(),
    reminderSenderName: optionalText(100).optional(),
  })
  .strict();

const COLUMNS: Record<keyof z.infer<typeof settingsBody>, string> = {
  defaultCurrency: 'default_currency',
  paymentTermsDays: 'payment_terms_days',
  reminderLocale: 'reminder_locale',
  reminderSenderName: 'reminder_sender_name',
};

const SELECT = `SELECT default_currency AS "defaultCurrency", payment_terms_days AS "paymentTermsDays", reminder_locale AS "reminderLocale",
  reminder_sender_name AS "reminderSenderName", updated_at AS "updatedAt" FROM workspace_settings`;

function present(row: Record<string, unknown>): SettingsView {
  return { ...(row as Omit<SettingsView, 'updatedAt'>), updatedAt: row.updatedAt ? (row.updatedAt as Date).toISOString() : null };
}

export async function readSettings(client: pg.ClientBase): Promise<SettingsView> {
  const { rows } = await client.query(SELECT);
  return present(rows[0]);
}

export async function updateSettings(client: pg.ClientBase, body: z.infer<typeof settingsBody>, now: Date): Promise<SettingsView> {
  const entries = Object.entries(body).filter(([, v]) => v !== undefined) as [keyof typeof COLUMNS, unknown][];
  if (entries.length === 0) throw badRequest('nothing_to_update', 'Send at least one setting to change.');
  const params: unknown[] = entries.map(([, v]) => v);
  const sets = entries.map(([k], i) => `${COLUMNS[k]} = $${i + 1}`);
  params.push(now);
  await client.query(`UPDATE workspace_settings SET ${sets.join(', ')}, updated_at = $${params.length}`, params);
  return readSettings(client);
}
