/**
 * PRV-4: the retention rules, declared in one place. `config.ts` mounts this schema at
 * `retention`; every rule has an id, the data category, the legal basis, the event that starts
 * its clock, the period and the action. The defaults are the promises of PROMISES.md PRV-4 (and
 * the periods of the data Havre itself holds). The SQL of each rule is registered by the module
 * that owns the data (`src/modules/retention/`); a rule whose data does not exist yet is declared
 * with `enabled: false`, so the published texts (PRV-11) and the report can already show it.
 *
 * An operator changes a rule in `havre.json` by id, e.g.
 * `{ "retention": { "rules": { "mail_outbox_delivered": { "period": { "months": 6 } } } } }`;
 * the other fields keep their defaults. A new id must give every field.
 */
import { z } from 'zod';

export const retentionPeriod = z.union([
  z.object({ days: z.number().int().min(1).max(36_600) }).strict(),
  z.object({ months: z.number().int().min(1).max(1_200) }).strict(),
]);
export type RetentionPeriod = z.infer<typeof retentionPeriod>;

const ruleShape = {
  /** What data, in the words of the privacy policy. */
  category: z.string().min(1).max(200),
  /** Why it is kept (GDPR art. 6 basis, or the law that requires it). */
  legalBasis: z.string().min(1).max(200),
  /** The event that starts the clock (e.g. "session expiry or revocation", "contract end"). */
  startsAt: z.string().min(1).max(200),
  period: retentionPeriod,
  action: z.enum(['delete', 'anonymise']),
  /** The module that registers the rule's SQL with the engine. */
  owner: z.string().min(1).max(40),
  enabled: z.boolean(),
};
export const retentionRule = z.object(ruleShape).strict();
export type RetentionRule = z.infer<typeof retentionRule>;
const rulePatch = z.object(ruleShape).partial().strict();

const d = (days: number) => ({ days });
const m = (months: number) => ({ months });

/** The default rules, in the order reports list them. */
export const DEFAULT_RETENTION_RULES: Readonly<Record<string, RetentionRule>> = {
  // Data that exists now: enforced by the daily job.
  sign_in_failures: { category: 'failed sign-ins (e-mail, IP address)', legalBasis: 'legitimate interest: account security (GDPR 6(1)(f))', startsAt: 'the attempt', period: d(1), action: 'delete', owner: 'accounts', enabled: true },
  sessions_ended: { category: 'sessions (IP address, browser)', legalBasis: 'contract; security of the account', startsAt: 'session expiry or revocation', period: d(30), action: 'delete', owner: 'accounts', enabled: true },
  api_tokens_ended: { category: 'API tokens (name, dates; the token only as a hash)', legalBasis: 'contract', startsAt: 'token expiry or revocation', period: d(30), action: 'delete', owner: 'accounts', enabled: true },
  one_time_tokens_ended: { category: 'e-mail verification and password reset links (hashes)', legalBasis: 'contract', startsAt: 'link expiry or use', period: d(7), action: 'delete', owner: 'accounts', enabled: true },
  invitations_ended: { category: 'invitations (invitee e-mail address)', legalBasis: 'contract', startsAt: 'acceptance, revocation or expiry', period: d(30), action: 'delete', owner: 'accounts', enabled: true },
  audit_personal_data: { category: 'IP and e-mail addresses in audit log entries (the entries stay, with ids only)', legalBasis: 'legitimate interest: security of the service and evidence (SEC-4)', startsAt: 'the entry', period: m(12), action: 'delete', owner: 'accounts', enabled: true },
  deleted_user_leftovers: { category: 'sessions, tokens and mails of a deleted account', legalBasis: 'none after deletion (ACC-5); kept only for delivery of the last mails', startsAt: 'account deletion', period: d(30), action: 'delete', owner: 'accounts', enabled: true },
  mail_outbox_delivered: { category: 'e-mails sent (address, text)', legalBasis: 'legitimate interest: proof of notices sent', startsAt: 'delivery (or storage in the local outbox)', period: m(13), action: 'delete', owner: 'mail', enabled: true },
  // PROMISES.md PRV-4 defaults for data later modules will hold: declared, not enforced yet.
  visit_logs: { category: 'visit logs (IP address, browser, referrer)', legalBasis: 'legitimate interest: statistics and security (PRV-6)', startsAt: 'the visit', period: m(2), action: 'delete', owner: 'visits', enabled: false },
  job_applications: { category: 'job applications not hired', legalBasis: 'consent / pre-contract', startsAt: 'end of the recruitment', period: m(24), action: 'delete', owner: 'recruitment', enabled: false },
  prospects: { category: 'prospects', legalBasis: 'legitimate interest: prospecting', startsAt: 'collection or last contact', period: m(36), action: 'delete', owner: 'marketing', enabled: false },
  customer_accounts: { category: "customer account data (a closed customer's company data and contacts)", legalBasis: 'contract; limitation period of claims', startsAt: 'end of contract', period: m(36), action: 'anonymise', owner: 'billing', enabled: false },
  payment_data: { category: 'payment data', legalBasis: 'contract; evidence in case of dispute', startsAt: 'account closure (kept until termination, then archived)', period: m(48), action: 'delete', owner: 'billing', enabled: false },
  accounting_documents: { category: 'accounting documents (invoices)', legalBasis: 'legal obligation: Code de commerce L123-22', startsAt: 'issue date', period: m(120), action: 'delete', owner: 'billing', enabled: false },
  consent_records: { category: 'cookie consent records', legalBasis: 'legal obligation: proof of consent', startsAt: 'the choice', period: m(13), action: 'delete', owner: 'consent', enabled: false },
  cancelled_tenants: { category: 'cancelled tenants (the whole workspace)', legalBasis: 'contract: grace period to export or reactivate (TEN-3, TEN-4)', startsAt: 'cancellation', period: d(28), action: 'delete', owner: 'deletion', enabled: false },
  backups: { category: 'backups of tenants, including destroyed ones (BKP-7)', legalBasis: 'legitimate interest: recovery after incidents', startsAt: 'the backup (destruction of the tenant: crypto-shredding)', period: m(12), action: 'delete', owner: 'deletion', enabled: false },
};

/** `retention` in the configuration: the rules (defaults merged with the file's changes) and the batch size. */
export const retentionSchema = z
  .object({
    /** Rows changed per transaction: each batch commits on its own, so no lock is held long. */
    batchSize: z.number().int().min(1).max(100_000).default(1_000),
    /** How often a node checks whether today's run is due (ms); the run itself is once a day. */
    tickMs: z.number().int().min(1000).default(3_600_000),
    rules: z
      .record(z.string().regex(/^[a-z][a-z0-9_]{1,79}$/, 'a rule id is snake_case'), rulePatch)
      .default({})
      .transform((patches, ctx) => {
        const out: Record<string, RetentionRule> = {};
        for (const id of new Set([...Object.keys(DEFAULT_RETENTION_RULES), ...Object.keys(patches)])) {
          const parsed = retentionRule.safeParse({ ...DEFAULT_RETENTION_RULES[id], ...patches[id] });
          if (parsed.success) out[id] = parsed.data;
          else for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: [id, ...issue.path.map(String)], message: issue.message });
        }
        return out;
      }),
  })
  .strict()
  .prefault({});

/** The date `period` before `now` (months as calendar months, UTC). */
export function periodStart(now: Date, period: RetentionPeriod): Date {
  const d = new Date(now);
  if ('days' in period) d.setUTCDate(d.getUTCDate() - period.days);
  else {
    // Clamp to the month's last day: 31 March minus one month is 28/29 February, not 3 March.
    const day = d.getUTCDate();
    d.setUTCDate(1);
    d.setUTCMonth(d.getUTCMonth() - period.months);
    const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    d.setUTCDate(Math.min(day, last));
  }
  return d;
}

/** "30 days", "13 months". */
export function describePeriod(period: RetentionPeriod): string {
  return 'days' in period ? `${period.days} day${period.days === 1 ? '' : 's'}` : `${period.months} month${period.months === 1 ? '' : 's'}`;
}
