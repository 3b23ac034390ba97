/**
 * Month-end billing run (BIL-3, BIL-4, BIL-6, BIL-9): 100,000 subscriptions in the control plane
 * (embedded PostgreSQL, durable defaults), the run of month M through the billing module's own
 * `runMonth` (the composition the node's daily job uses: usage from metering, one query per page;
 * the mailer of the core, notices queued in the outbox), timed twice:
 *  - first run: every invoice issued and numbered — verified afterwards: count = expected, sequence
 *    values exactly 1..N, counter at N+1, prorata and overuse counts as generated;
 *  - second run: nothing to do (idempotence), every page re-read and found invoiced.
 * Targets: first run ≤ 60 s, second run ≤ 10 s, on the bench machine (2 cores, shared).
 *
 * Baseline, same database and run: a plain `INSERT … SELECT` of as many invoice rows, of the same
 * shape (lines, buyer and seller identity as jsonb), into a copy of billing_documents (same
 * indexes and checks; no triggers, no foreign keys) — what the database alone costs to write
 * them. Run before the first billing run and after the second (bracketing, to show drift).
 *
 * The data (set up in bulk SQL, not measured): 60,000 customers (85 % French, 10 % German with a
 * VAT number — reverse charge, 5 % outside the EU), each with an owner (2 in 7 an administrator too);
 * 100,000 active tenants, each on its own tenant_databases row (the tenants' check requires a
 * database for an active tenant); one subscription per tenant, in this mix for month M:
 *  - 86 % started months before M;
 *  -  7 % start in M after its 1st (prorata, BIL-4);
 *  -  2 % terminated, contract ended before M (not invoiced); 2 % terminated, ending at M's end (invoiced);
 *  -  1 % start after M (not invoiced yet); 2 % started in M−1 (full month).
 * Usage: every tenant existing in M−1 has a usage_days row per day of M−1 (as metering leaves
 * them: 30 rows each, ~2.8 M rows); 3 % used 2.5 CPU hours (over p19…p199: upgraded to p499 with a
 * notice; within p499/p999), 0.3 % used 10 CPU hours (beyond the largest plan).
 */
import os from 'node:os';
import { sql } from 'kysely';
import { machine, percentile, startBenchHavre, type BenchResult } from './bench-kit.ts';

const SUBSCRIPTIONS = 100_000;
const CUSTOMERS = 60_000;
const MONTH = '2026-12';
const PREV = '2026-11';
const FIRST = `${MONTH}-01`;
const PREV_FIRST = `${PREV}-01`;
const LAST = `${MONTH}-31`;
/** runBillingMonth's default page (`pageSize ?? 500`), which the module's runMonth uses. */
const PAGE_SIZE = 500;
const PLANS = ['p19', 'p19', 'p49', 'p49', 'p99', 'p199', 'p499', 'p999'];
const TARGET_FIRST_S = 60;
const TARGET_SECOND_S = 10;

const load = () => os.loadavg().map((l) => Math.round(l * 100) / 100);

/** Which kind subscription `i` (1-based) is, from `i % 100` — the same rule as the SQL below. */
function kindOf(i: number): 'old' | 'prorata' | 'ended' | 'endsInMonth' | 'future' | 'prevMonth' {
  const r = i % 100;
  if (r < 86) return 'old';
  if (r < 93) return 'prorata';
  if (r < 95) return 'ended';
  if (r < 97) return 'endsInMonth';
  if (r < 98) return 'future';
  return 'prevMonth';
}

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const loads: Record<string, number[]> = { start: load() };
  const havre = await startBenchHavre({ regionServers: 0, log });
  const { core, modules } = havre;
  const db = core.db;
  try {
    log('setting up: customers, users, tenants, subscriptions, usage (bulk SQL)');
    const setupStart = performance.now();
    await sql`
      INSERT INTO customers (id, name, country, postal_address, vat_number, created_at, updated_at)
      SELECT gen_random_uuid(), 'Client ' || i || ' SARL',
             CASE WHEN i % 20 < 17 THEN 'FR' WHEN i % 20 < 19 THEN 'DE' ELSE 'US' END,
             i || ' rue de la Paix, 75002 Paris',
             CASE WHEN i % 20 BETWEEN 17 AND 18 THEN 'DE' || lpad(i::text, 9, '0') END,
             now(), now()
        FROM generate_series(1, ${CUSTOMERS}) i`.execute(db);
    await sql`CREATE TEMP TABLE bench_customers AS SELECT id, row_number() OVER (ORDER BY name) AS n FROM customers`.execute(db);
    await sql`
      INSERT INTO users (email, name, locale, password_hash, email_verified_at, created_at, updated_at)
      SELECT 'owner' || i || '@example.test', 'Owner ' || i, CASE WHEN i % 3 = 0 THEN 'en' ELSE 'fr' END, 'x', now(), now(), now()
        FROM generate_series(1, ${CUSTOMERS}) i
      UNION ALL
      SELECT 'admin' || i || '@example.test', 'Admin ' || i, 'fr', 'x', now(), now(), now()
        FROM generate_series(1, ${CUSTOMERS}) i WHERE i % 7 < 2`.execute(db);
    await sql`
      INSERT INTO memberships (customer_id, user_id, role, created_at)
      SELECT c.id, u.id, CASE WHEN u.email LIKE 'owner%' THEN 'owner' ELSE 'administrator' END, now()
        FROM users u JOIN bench_customers c ON c.n = substring(u.email FROM '[0-9]+')::bigint`.execute(db);
    await sql`
      INSERT INTO database_servers (id, name, region, admin_url_sealed, address, max_tenants, server_version_num, created_at, updated_at)
      VALUES (gen_random_uuid(), 'bench-fr', 'fr', 'v1.bench-not-a-server', '127.0.0.1:1', 1000000, 160000, now(), now())`.execute(db);
    await sql`
      INSERT INTO tenant_databases (id, server_id, database_name, role_name, role_password_sealed, state, created_at, updated_at, assigned_at)
      SELECT gen_random_uuid(), s.id, 't_' || lpad(to_hex(i), 24, '0'), 'r_' || lpad(to_hex(i), 24, '0'), 'v1.bench', 'assigned', now(), now(), now()
        FROM generate_series(1, ${SUBSCRIPTIONS}) i, database_servers s`.execute(db);
    // Subscription i: tenant i, customer ((i−1) mod CUSTOMERS)+1, plan and kind from i (kindOf above).
    await sql`
      CREATE TEMP TABLE bench_subs AS
      SELECT i, gen_random_uuid() AS tenant_id, c.id AS customer_id, (${sql.lit(`{${PLANS.join(',')}}`)}::text[])[1 + i % ${PLANS.length}] AS plan,
             CASE WHEN i % 100 < 86 THEN date '2025-01-01' + (i % 600)
                  WHEN i % 100 < 93 THEN ${FIRST}::date + 1 + (i % 30)
                  WHEN i % 100 < 97 THEN date '2025-06-01' + (i % 300)
                  WHEN i % 100 < 98 THEN date '2027-01-05'
                  ELSE ${PREV_FIRST}::date + (i % 30) END AS started_on,
             CASE WHEN i % 100 BETWEEN 93 AND 94 THEN ${PREV_FIRST}::date + 29
                  WHEN i % 100 BETWEEN 95 AND 96 THEN ${LAST}::date END AS ends_on,
             td.id AS tenant_database_id
        FROM generate_series(1, ${SUBSCRIPTIONS}) i
        JOIN bench_customers c ON c.n = (i - 1) % ${CUSTOMERS} + 1
        JOIN tenant_databases td ON td.database_name = 't_' || lpad(to_hex(i), 24, '0')`.execute(db);
    await sql`
      INSERT INTO tenants (id, customer_id, name, region, state, tenant_database_id, plan, created_at, updated_at, state_changed_at)
      SELECT tenant_id, customer_id, 'Espace ' || i, 'fr', 'active', tenant_database_id, plan, now(), now(), now() FROM bench_subs`.execute(db);
    await sql`
      INSERT INTO subscriptions (id, tenant_id, customer_id, plan, started_on, termination_received_at, termination_source, ends_on, created_at, updated_at)
      SELECT gen_random_uuid(), tenant_id, customer_id, plan, started_on, CASE WHEN ends_on IS NOT NULL THEN now() END, CASE WHEN ends_on IS NOT NULL THEN 'portal' END, ends_on, now(), now()
        FROM bench_subs`.execute(db);
    // Usage of M−1: a row per day the tenant existed in M−1; 3 % at 2.5 CPU hours, 0.3 % at 10, the rest ~10 minutes.
    await sql`
      INSERT INTO usage_days (tenant_id, day, db_time_ms, peak_database_bytes, peak_storage_bytes, samples)
      SELECT s.tenant_id, d::date,
             CASE WHEN s.i % 1000 < 3 THEN 1200000 WHEN s.i % 100 < 3 THEN 300000 ELSE 20000 END,
             50000000 + (s.i % 1000) * 100000, 100000000 + (s.i % 500) * 200000, 24
        FROM bench_subs s, generate_series(${PREV_FIRST}::timestamp, ${PREV_FIRST}::timestamp + interval '29 days', interval '1 day') d
       WHERE d::date >= s.started_on`.execute(db);
    await sql`ANALYZE`.execute(db);
    const setupS = (performance.now() - setupStart) / 1000;
    loads.afterSetup = load();

    // What the run must do, from the generation rule (not from the run's own query).
    let expected = 0;
    let expectedProrata = 0;
    let expectedUpgrades = 0;
    const overPlans = new Set(['p19', 'p49', 'p99', 'p199']);
    for (let i = 1; i <= SUBSCRIPTIONS; i++) {
      const kind = kindOf(i);
      if (kind === 'ended' || kind === 'future') continue;
      expected++;
      if (kind === 'prorata') expectedProrata++;
      // Overuse is billed only to subscriptions that existed before M (all but the prorata ones).
      const plan = PLANS[i % PLANS.length]!;
      if (kind !== 'prorata' && (i % 1000 < 3 || (i % 100 < 3 && overPlans.has(plan)))) expectedUpgrades++;
    }
    const usageRows = Number((await sql<{ n: string }>`SELECT count(*) AS n FROM usage_days`.execute(db)).rows[0]!.n);
    log(`set up in ${setupS.toFixed(1)} s: ${SUBSCRIPTIONS} subscriptions, ${usageRows} usage_days rows; expecting ${expected} invoices (${expectedProrata} prorata, ${expectedUpgrades} upgrades)`);

    // Baseline: the same number of invoice rows, same shape, written by one INSERT … SELECT.
    await sql`CREATE TABLE bench_documents (LIKE billing_documents INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES)`.execute(db);
    const identity = JSON.stringify({ name: core.config.billing.seller.name, address: core.config.billing.seller.address, siren: core.config.billing.seller.siren });
    const baseline = async (): Promise<number> => {
      await sql`TRUNCATE bench_documents`.execute(db);
      const t = performance.now();
      const res = await sql`
        INSERT INTO bench_documents (id, kind, seller, state, number, sequence_value, customer_id, period_start, period_end, currency, lines, net_cents, vat_rate_basis_points, vat_cents, gross_cents, vat_mention, buyer, seller_identity, issue_date, due_date, idempotency_key, created_at, issued_at)
        SELECT gen_random_uuid(), 'invoice', 'havre', 'issued', 'F' || lpad(n::text, 6, '0'), n, q.customer_id, ${FIRST}::date, ${LAST}::date, 'EUR',
               jsonb_build_array(jsonb_build_object('labelFr', 'Forfait ' || q.plan || ', du ${sql.raw(FIRST)} au ${sql.raw(LAST)}', 'labelEn', q.plan || ' plan, ${sql.raw(FIRST)} to ${sql.raw(LAST)}', 'quantity', 1, 'unitCents', 4900, 'amountCents', 4900)),
               4900, 2000, 980, 5880, NULL,
               jsonb_build_object('name', q.name, 'country', q.country, 'postalAddress', q.postal_address, 'vatNumber', q.vat_number, 'tenantId', q.tenant_id),
               ${identity}::jsonb, ${FIRST}::date, ${FIRST}::date + 30, 'monthly:' || q.id || ':${sql.raw(MONTH)}', now(), now()
          FROM (SELECT s.id, s.tenant_id, s.customer_id, s.plan, c.name, c.country, c.postal_address, c.vat_number, row_number() OVER (ORDER BY s.id) AS n
                  FROM subscriptions s JOIN customers c ON c.id = s.customer_id
                 WHERE s.started_on <= ${LAST}::date AND (s.ends_on IS NULL OR s.ends_on >= ${FIRST}::date)) q`.execute(db);
      const ms = performance.now() - t;
      if (Number(res.numAffectedRows) !== expected) throw new Error(`baseline wrote ${res.numAffectedRows} rows, expected ${expected}`);
      return ms;
    };
    log('baseline: bulk INSERT … SELECT (before)');
    const baselineBeforeMs = await baseline();
    loads.afterBaselineBefore = load();

    // Evidence for the usage query: one page of tenants, per-tenant queries (as before) vs one query.
    const sampleTenants = (await db.selectFrom('subscriptions').select('tenant_id').orderBy('id').limit(PAGE_SIZE).execute()).map((r) => r.tenant_id);
    const perTenantT = performance.now();
    for (const id of sampleTenants) await modules.metering.service.month(id, PREV);
    const perTenantMs = performance.now() - perTenantT;
    const onePageT = performance.now();
    const onePage = await modules.metering.service.months(sampleTenants, PREV);
    const onePageMs = performance.now() - onePageT;
    log(`usage of one page of ${PAGE_SIZE} tenants: ${perTenantMs.toFixed(0)} ms per tenant-query, ${onePageMs.toFixed(0)} ms in one query (${onePage.size} with usage)`);

    const pageTimes: number[] = [];
    let pageT = performance.now();
    const onPage = () => {
      const t = performance.now();
      pageTimes.push(t - pageT);
      pageT = t;
    };

    log(`first run of ${MONTH}`);
    pageT = performance.now();
    const t1 = performance.now();
    const first = await modules.billing.runMonth(MONTH, onPage);
    const firstS = (performance.now() - t1) / 1000;
    const firstPages = [...pageTimes];
    loads.afterFirstRun = load();
    log(`first run: ${firstS.toFixed(1)} s, ${JSON.stringify(first)}`);

    // Verification: count, gapless numbers, counter, prorata, upgrades, notices.
    const check = (
      await sql<{ n: string; min: string | null; max: string | null; distinct_values: string; distinct_numbers: string; prorata: string; overuse: string }>`
        SELECT count(*) AS n, min(sequence_value) AS min, max(sequence_value) AS max, count(DISTINCT sequence_value) AS distinct_values, count(DISTINCT number) AS distinct_numbers,
               count(*) FILTER (WHERE issue_date > ${FIRST}::date) AS prorata, count(*) FILTER (WHERE jsonb_array_length(lines) = 2) AS overuse
          FROM billing_documents WHERE kind = 'invoice' AND seller = 'havre' AND idempotency_key LIKE ${`monthly:%:${MONTH}`}`.execute(db)
    ).rows[0]!;
    const counter = await db.selectFrom('billing_sequences').select('next_value').where('seller', '=', 'havre').where('kind', '=', 'invoice').executeTakeFirstOrThrow();
    const notices = Number((await sql<{ n: string }>`SELECT count(*) AS n FROM mail_outbox WHERE template = 'billing.overuse_notice'`.execute(db)).rows[0]!.n);
    const expectedNotices = Number(
      (
        await sql<{ n: string }>`SELECT count(*) AS n FROM billing_documents d JOIN memberships m ON m.customer_id = d.customer_id AND m.role IN ('owner', 'administrator')
                                  WHERE d.idempotency_key LIKE ${`monthly:%:${MONTH}`} AND jsonb_array_length(d.lines) = 2`.execute(db)
      ).rows[0]!.n,
    );
    const n = Number(check.n);
    const verified = {
      invoices: n,
      expected,
      countOk: n === expected && first.invoiced === expected,
      gapless: Number(check.min) === 1 && Number(check.max) === n && Number(check.distinct_values) === n && Number(check.distinct_numbers) === n,
      counterNext: Number(counter.next_value),
      counterOk: Number(counter.next_value) === n + 1,
      prorata: Number(check.prorata),
      prorataOk: Number(check.prorata) === expectedProrata,
      upgrades: first.upgrades,
      upgradesOk: first.upgrades === expectedUpgrades && Number(check.overuse) === expectedUpgrades,
      notices,
      noticesOk: notices === expectedNotices && notices > 0,
    };
    const allVerified = verified.countOk && verified.gapless && verified.counterOk && verified.prorataOk && verified.upgradesOk && verified.noticesOk;
    log(`verification: ${JSON.stringify(verified)}`);

    log(`second run of ${MONTH} (nothing to do)`);
    pageTimes.length = 0;
    pageT = performance.now();
    const t2 = performance.now();
    const second = await modules.billing.runMonth(MONTH, onPage);
    const secondS = (performance.now() - t2) / 1000;
    const secondPages = [...pageTimes];
    loads.afterSecondRun = load();
    const countAfter = Number((await sql<{ n: string }>`SELECT count(*) AS n FROM billing_documents WHERE idempotency_key LIKE ${`monthly:%:${MONTH}`}`.execute(db)).rows[0]!.n);
    const secondOk = second.invoiced === 0 && second.alreadyInvoiced === expected && countAfter === expected;
    log(`second run: ${secondS.toFixed(1)} s, ${JSON.stringify(second)}`);

    log('baseline: bulk INSERT … SELECT (after)');
    const baselineAfterMs = await baseline();
    await sql`DROP TABLE bench_documents`.execute(db);
    loads.end = load();

    const baselineMeanS = (baselineBeforeMs + baselineAfterMs) / 2 / 1000;
    const round1 = (v: number) => Math.round(v * 10) / 10;
    const round2 = (v: number) => Math.round(v * 100) / 100;
    const invoicesPerSecond = Math.round(first.invoiced / firstS);
    const ratio = round1(firstS / baselineMeanS);
    const meetsFirst = firstS <= TARGET_FIRST_S;
    const meetsSecond = secondS <= TARGET_SECOND_S;
    const pageStats = (p: number[]) => ({ pages: p.length, p50Ms: Math.round(percentile(p, 50)), p95Ms: Math.round(percentile(p, 95)), maxMs: Math.round(Math.max(...p)) });
    const json = {
      subscriptions: SUBSCRIPTIONS,
      customers: CUSTOMERS,
      month: MONTH,
      pageSize: PAGE_SIZE,
      usageDaysRows: usageRows,
      setupSeconds: round1(setupS),
      firstRun: { seconds: round2(firstS), outcome: first, invoicesPerSecond, pageMs: pageStats(firstPages) },
      secondRun: { seconds: round2(secondS), outcome: second, idempotent: secondOk, pageMs: pageStats(secondPages) },
      verification: { ...verified, allVerified },
      baseline: { what: 'INSERT … SELECT of the same number of invoice rows into a copy of billing_documents (same indexes and checks)', beforeSeconds: round2(baselineBeforeMs / 1000), afterSeconds: round2(baselineAfterMs / 1000), ratioOfFirstRunToMean: ratio },
      usageQueryOnePage: { tenants: PAGE_SIZE, perTenantQueriesMs: Math.round(perTenantMs), oneQueryMs: Math.round(onePageMs) },
      targets: { firstRunSeconds: TARGET_FIRST_S, secondRunSeconds: TARGET_SECOND_S },
      meetsTarget: { firstRun: meetsFirst, secondRun: meetsSecond },
      loadAverages: loads,
      machine: machine(),
    };
    const yesNo = (b: boolean) => (b ? 'yes' : '**no**');
    const markdown = `# Month-end billing run: ${SUBSCRIPTIONS.toLocaleString('en')} subscriptions

\`billing.runMonth('${MONTH}')\` (the module's own composition: usage from metering in one query per page — only for the page's
subscriptions not invoiced yet that existed before the month, so none on a second run — notices to the outbox) on an embedded control-plane PostgreSQL (durable defaults), page size ${PAGE_SIZE} (runBillingMonth's default), ${firstPages.length} pages.
Data (bulk SQL, ${round1(setupS)} s, not measured): ${CUSTOMERS.toLocaleString('en')} customers (85 % FR, 10 % DE reverse charge, 5 % outside the EU),
${SUBSCRIPTIONS.toLocaleString('en')} active tenants and subscriptions — 86 % started months ago, 7 % start mid-${MONTH} (prorata), 2 % ended before it,
2 % end with it, 1 % start after it, 2 % started in ${PREV} — and ${usageRows.toLocaleString('en')} \`usage_days\` rows for ${PREV}
(3 % of tenants over their plan's CPU hours, 0.3 % beyond the largest plan).

| run | time | target | met | invoiced | already invoiced | upgrades | invoices/s | page p50 / p95 / max ms |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
| first | **${round1(firstS)} s** | ≤ ${TARGET_FIRST_S} s | ${yesNo(meetsFirst)} | ${first.invoiced} | ${first.alreadyInvoiced} | ${first.upgrades} | ${invoicesPerSecond} | ${json.firstRun.pageMs.p50Ms} / ${json.firstRun.pageMs.p95Ms} / ${json.firstRun.pageMs.maxMs} |
| second (idempotent) | **${round1(secondS)} s** | ≤ ${TARGET_SECOND_S} s | ${yesNo(meetsSecond)} | ${second.invoiced} | ${second.alreadyInvoiced} | ${second.upgrades} | — | ${json.secondRun.pageMs.p50Ms} / ${json.secondRun.pageMs.p95Ms} / ${json.secondRun.pageMs.maxMs} |

Verified after the first run: ${n} invoices for ${expected} expected (${yesNo(verified.countOk)}); sequence values 1..${check.max ?? '–'}, all distinct, no gap
(${yesNo(verified.gapless)}); counter next value ${verified.counterNext} (${yesNo(verified.counterOk)}); ${verified.prorata} prorata invoices for ${expectedProrata} expected (${yesNo(verified.prorataOk)});
${verified.upgrades} overuse upgrades for ${expectedUpgrades} expected (${yesNo(verified.upgradesOk)}); ${notices} overuse notices queued, one per upgrade and owner/administrator (${yesNo(verified.noticesOk)}).
Second run: no invoice made, ${second.alreadyInvoiced} found, ${countAfter} invoices in total (${yesNo(secondOk)}).

Baseline in the same run — one \`INSERT … SELECT\` of ${expected} invoice rows of the same shape into a copy of \`billing_documents\`
(same indexes and checks, no triggers or foreign keys): ${round2(baselineBeforeMs / 1000)} s before the runs, ${round2(baselineAfterMs / 1000)} s after.
The first run takes **${ratio} ×** the mean of the two. Beyond writing the rows, the run reads each page and its usage, checks the
idempotency keys under a per-seller lock, takes the numbers, builds each invoice in Node and sends 500-row inserts, and makes the
upgrades and notices one subscription at a time; this bench does not break the difference down further.

Usage of one page (${PAGE_SIZE} tenants, ${PREV}): ${Math.round(perTenantMs)} ms as one query per tenant (how the billing module composed it before \`months\` existed),
${Math.round(onePageMs)} ms as one query for the page (\`metering.service.months\`, used now).

Load averages (1, 5, 15 min): start ${JSON.stringify(loads.start)}, after setup ${JSON.stringify(loads.afterSetup)}, after the first run ${JSON.stringify(loads.afterFirstRun)},
after the second ${JSON.stringify(loads.afterSecondRun)}, end ${JSON.stringify(loads.end)} — the machine is shared; figures are of one run.

Machine: ${JSON.stringify(json.machine)}
`;
    return { name: 'billing', json, markdown };
  } finally {
    await havre.close();
  }
}
