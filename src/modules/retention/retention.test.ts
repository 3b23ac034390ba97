/**
 * PRV-4: the retention engine — rules from config applied by the daily job at the test clock's
 * `now`, bounded batches, evidence without personal data, the live report, and `--as-of` only on
 * a disposable installation.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../../test/cli.ts';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { loadConfig } from '../../config/config.ts';
import { DEFAULT_RETENTION_RULES, periodStart } from '../../config/retention-rules.ts';
import { accountsRetentionCategories } from '../accounts/accounts-retention.ts';
import { runRetention } from './retention-engine.ts';
import { createRetentionRegistry, type RetentionCategory } from './retention-registry.ts';
import { createRetentionRepo } from './retention-repo.ts';
import { retentionReport } from './retention-report.ts';
import { assertDisposable } from './index.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext({ now: new Date('2026-11-23T09:00:00Z') });
});
afterAll(async () => ctx?.close());

const DAY = 86_400_000;
const ago = (days: number) => new Date(ctx.core.clock.now().getTime() - days * DAY);

async function count(table: 'sign_in_failures' | 'sessions' | 'api_tokens' | 'mail_outbox' | 'one_time_tokens' | 'invitations'): Promise<number> {
  const row = await ctx.core.db.selectFrom(table).select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

async function seedUser(): Promise<string> {
  const now = ctx.core.clock.now();
  const row = await ctx.core.db
    .insertInto('users')
    .values({ email: `ret-${Math.random().toString(16).slice(2)}@example.test`, name: 'Retention Person', phone: null, locale: 'en', password_hash: 'x', email_verified_at: now, staff_role: null, totp_secret_sealed: null, totp_enabled_at: null, created_at: now, updated_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

describe('retention engine', () => {
  it('[PRV-4] the daily job applies the configured rules at the moved clock: only records past their period go, once a day, with evidence free of personal data', async () => {
    const db = ctx.core.db;
    const userId = await seedUser();
    const email = 'victim@example.test';
    const ip = '198.51.100.77';
    // Ages relative to today; the job runs two days later.
    await db.insertInto('sign_in_failures').values([{ email, ip, at: ago(1) }, { email, ip, at: ago(-1.5) }]).execute();
    const session = (id: string, expiresDaysAgo: number) => ({ id, user_id: userId, ip, user_agent: 'Firefox', created_at: ago(60), last_seen_at: ago(40), expires_at: ago(expiresDaysAgo), revoked_at: null });
    await db.insertInto('sessions').values([session('s-old', 31), session('s-recent', 20), session('s-live', -5)]).execute();
    const mail = (subject: string, sentDaysAgo: number, status: 'sent' | 'pending') => ({ to_address: email, user_id: userId, template: 't', locale: 'en' as const, subject, body_text: 'Hello Retention Person', transport: 'smtp' as const, status, created_at: ago(sentDaysAgo), sent_at: status === 'sent' ? ago(sentDaysAgo) : null, next_attempt_at: null, locked_until: null, dedupe_key: null });
    await db.insertInto('mail_outbox').values([mail('old', 400, 'sent'), mail('kept', 380, 'sent'), mail('in delivery', 500, 'pending')]).execute();

    ctx.clock.advance(2 * DAY);
    const result = await ctx.app.modules.retention.tick();
    expect(result).not.toBeNull();
    expect(await ctx.app.modules.retention.tick()).toBeNull(); // once a day, whatever the number of nodes

    expect((await db.selectFrom('sign_in_failures').select('at').where('email', '=', email).execute()).length).toBe(1);
    expect((await db.selectFrom('sessions').select('id').where('user_id', '=', userId).orderBy('id').execute()).map((s) => s.id)).toEqual(['s-live', 's-recent']);
    // 13 months: the 402-day-old mail goes, the 382-day-old one (< 13 months) and the one still in delivery stay.
    expect((await db.selectFrom('mail_outbox').select('subject').where('user_id', '=', userId).orderBy('subject').execute()).map((m) => m.subject)).toEqual(['in delivery', 'kept']);

    const evidence = await db.selectFrom('retention_runs').selectAll().where('run_id', '=', result!.runId).execute();
    const byRule = new Map(evidence.map((e) => [e.rule_id, e]));
    expect(byRule.get('sign_in_failures')).toMatchObject({ status: 'ok', affected: '1', batches: 1, simulated: false });
    expect(byRule.get('sessions_ended')).toMatchObject({ status: 'ok', affected: '1' });
    expect(byRule.get('mail_outbox_delivered')).toMatchObject({ status: 'ok', affected: '1' });
    // Every enabled rule left evidence; disabled (declared only) ones none.
    const enabled = Object.entries(ctx.core.config.retention.rules).filter(([, r]) => r.enabled).map(([id]) => id);
    expect([...byRule.keys()].sort()).toEqual(enabled.sort());
    expect(byRule.has('visit_logs')).toBe(false);
    // No personal data: fixed columns of counts, times and ids of rules; no address, IP, name or text.
    const text = JSON.stringify(evidence);
    for (const personal of [email, ip, 'Retention Person', userId, 'Firefox', 'Hello']) expect(text).not.toContain(personal);
    expect(Object.keys(evidence[0]!).sort()).toEqual(['action', 'affected', 'as_of', 'batches', 'cutoff', 'error', 'finished_at', 'id', 'oldest_remaining_seconds', 'rule_id', 'run_id', 'simulated', 'started_at', 'status'].sort());
  });

  it('[PRV-4] the report proves every enforced rule with a live query (oldest ≤ period) and shows its last run; an overdue record breaks it', async () => {
    const retention = ctx.app.modules.retention;
    await retention.run(ctx.core.clock.now());
    const report = await retention.report(ctx.core.clock.now());
    expect(report.ok).toBe(true);
    for (const rule of report.rules) {
      const declared = ctx.core.config.retention.rules[rule.id]!;
      if (!declared.enabled) {
        expect(rule.status).toBe('not_enforced');
        continue;
      }
      expect(rule.status).toBe('ok');
      if (rule.oldestStartedAt) expect(new Date(rule.oldestStartedAt).getTime()).toBeGreaterThanOrEqual(periodStart(ctx.core.clock.now(), declared.period).getTime());
      expect(rule.lastRun).toMatchObject({ status: 'ok', simulated: false });
    }
    expect(report.rules.map((r) => r.id)).toEqual(Object.keys(DEFAULT_RETENTION_RULES));

    // A failed sign-in 3 days old is past its 1-day period by more than a daily cycle: overdue, caught by the live query.
    await ctx.core.db.insertInto('sign_in_failures').values({ email: 'late@example.test', ip: '192.0.2.9', at: ago(3) }).execute();
    const broken = await retention.report(ctx.core.clock.now());
    expect(broken.ok).toBe(false);
    expect(broken.rules.find((r) => r.id === 'sign_in_failures')).toMatchObject({ status: 'overdue' });
    await retention.run(ctx.core.clock.now(), { only: ['sign_in_failures'] });
    expect((await retention.report(ctx.core.clock.now())).ok).toBe(true);
  });

  it('[PRV-4] batches are bounded: 12,000 expired rows with a batch of 5,000 are removed in 3 transactions, recorded in the evidence', async () => {
    const at = ago(3);
    await sql`INSERT INTO sign_in_failures (email, ip, at) SELECT 'bulk' || g || '@example.test', '203.0.113.1', ${at} FROM generate_series(1, 12000) g`.execute(ctx.core.db);
    const registry = createRetentionRegistry();
    let transactions = 0;
    const real = accountsRetentionCategories().find((c) => c.ruleId === 'sign_in_failures')!;
    const counting: RetentionCategory = { ...real, apply: async (trx, cutoff, n) => { transactions++; expect(trx.isTransaction).toBe(true); return real.apply(trx, cutoff, n); } };
    registry.register(counting);
    const repo = createRetentionRepo(ctx.core.db);
    const rules = { sign_in_failures: DEFAULT_RETENTION_RULES.sign_in_failures! };
    const { runId, outcomes } = await runRetention({ db: ctx.core.db, repo, registry, rules, batchSize: 5_000, clock: ctx.core.clock }, ctx.core.clock.now());
    expect(outcomes).toEqual([expect.objectContaining({ ruleId: 'sign_in_failures', status: 'ok', affected: 12_000, batches: 3 })]);
    expect(transactions).toBe(3);
    expect(await count('sign_in_failures')).toBeLessThan(10);
    expect((await repo.listRuns(runId))[0]).toMatchObject({ affected: '12000', batches: 3 });
  });

  it('[PRV-4] an enabled rule with no registered SQL is evidence of a broken promise, not a silent skip', async () => {
    const repo = createRetentionRepo(ctx.core.db);
    const rules = { visit_logs: { ...DEFAULT_RETENTION_RULES.visit_logs!, enabled: true } };
    const { outcomes } = await runRetention({ db: ctx.core.db, repo, registry: createRetentionRegistry(), rules, batchSize: 100, clock: ctx.core.clock }, ctx.core.clock.now());
    expect(outcomes).toEqual([expect.objectContaining({ ruleId: 'visit_logs', status: 'not_registered' })]);
    const report = await retentionReport({ db: ctx.core.db, repo, registry: createRetentionRegistry(), rules, tickMs: 60_000 }, ctx.core.clock.now());
    expect(report).toMatchObject({ ok: false, rules: [expect.objectContaining({ id: 'visit_logs', status: 'not_registered' })] });
  });

  it('[PRV-4] rules are one config section: one field of one rule changes by id, unknown ids must be complete, production is never disposable', () => {
    const config = loadConfig({}, { home: '/tmp/havre-retention-config', retention: { rules: { mail_outbox_delivered: { period: { months: 6 } } } } });
    expect(config.retention.rules.mail_outbox_delivered).toEqual({ ...DEFAULT_RETENTION_RULES.mail_outbox_delivered, period: { months: 6 } });
    expect(config.retention.rules.sessions_ended).toEqual(DEFAULT_RETENTION_RULES.sessions_ended);
    expect(() => loadConfig({}, { home: '/tmp/havre-retention-config', retention: { rules: { new_rule: { period: { days: 3 } } } } })).toThrow(/new_rule/);
    expect(() => loadConfig({}, { home: '/tmp/havre-retention-config', env: 'production', databaseUrl: 'postgres://x/y', masterKey: Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString('base64'), disposable: true })).toThrow(/never disposable/);
    expect(() => assertDisposable({ env: 'development', disposable: false })).toThrow(/Refusing to time-travel/);
    expect(() => assertDisposable({ env: 'development', disposable: true })).not.toThrow();
    // Calendar months, clamped: 31 March minus one month is 28 February.
    expect(periodStart(new Date('2027-03-31T12:00:00Z'), { months: 1 }).toISOString()).toBe('2027-02-28T12:00:00.000Z');
  });

  it('[PRV-4] havre retention run --as-of refuses on a non-disposable installation and runs (flagged simulated) on a disposable one; report exits 0', async () => {
    const refused = await runCli(ctx, ['retention', 'run', '--as-of', '2027-12-01']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('not_disposable');
    expect(await ctx.core.db.selectFrom('retention_runs').select('id').where('simulated', '=', true).execute()).toEqual([]);

    await writeFile(path.join(ctx.core.config.home, 'havre.json'), JSON.stringify({ disposable: true }));
    const simulated = await runCli(ctx, ['--json', 'retention', 'run', '--as-of', '2027-12-01']);
    expect(simulated.code, simulated.stderr).toBe(0);
    const out = JSON.parse(simulated.stdout);
    const rows = await ctx.core.db.selectFrom('retention_runs').selectAll().where('run_id', '=', out.runId).execute();
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.simulated && r.as_of.toISOString() === '2027-12-01T00:00:00.000Z')).toBe(true);
    expect((await runCli(ctx, ['retention', 'run', '--as-of', '2027-13-01'])).code).toBe(2);

    const report = await runCli(ctx, ['retention', 'report']);
    expect(report.stdout).toMatch(/^NOT_ENFORCED +visit_logs +2 months/m);
    expect(report.stdout).toMatch(/^(OK|DUE) +sign_in_failures +1 day /m);
  }, 60_000);
});
