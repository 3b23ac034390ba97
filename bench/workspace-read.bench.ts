/**
 * Workspace read path: "list 50 contacts" through Havre's full path — HTTP, Bearer token
 * authentication, tenant lookup and membership check in the control plane, the tenant's own role
 * on its own database, the generic record SQL, zod response serialization — against a bare
 * Fastify + pg handler running the SAME query text on the SAME database (as the same tenant role,
 * with a pool kept warm) in the same process and run. Target: Havre's overhead ≤ 20 %.
 *
 * Both servers listen on loopback and are measured with the same keep-alive client, in
 * interleaved rounds (Havre, bare, Havre, bare…) so that load drift hits both alike. Reported:
 * per-request latency (sequential) and throughput with 8 requests in flight.
 */
import Fastify from 'fastify';
import pg from 'pg';
import { newApiTokenValue } from '../src/modules/accounts/authn.ts';
import { contacts } from '../src/modules/workspace/record-specs.ts';
import { listRecords } from '../src/modules/workspace/records-sql.ts';
import { machine, startBenchHavre, summarize, timeEach, type BenchResult } from './bench-kit.ts';

const CONTACTS = 500;
const ROUNDS = 10;
const PER_ROUND = 200;
const IN_FLIGHT = 8;
const THROUGHPUT_MS = 3_000;

/** Requests/s over `ms` with `inFlight` concurrent loops. */
async function throughput(url: string, headers: Record<string, string>, inFlight: number, ms: number): Promise<number> {
  let count = 0;
  const end = performance.now() + ms;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < end) {
        const res = await fetch(url, { headers });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        count++;
      }
    }),
  );
  return (count / ms) * 1000;
}

export async function run(log: (line: string) => void): Promise<BenchResult> {
  const havre = await startBenchHavre({ regionServers: 1, config: { tenants: { warmPoolSize: 1 } }, log, http: true });
  const { core } = havre;
  const app = havre.app!;
  const bare = Fastify({ logger: false });
  let barePool: pg.Pool | null = null;
  try {
    const serverUrl = havre.servers[0]!.url('postgres');
    await app.modules.fleet.servers.add({ name: 'bench-fr', region: 'fr', adminUrl: serverUrl });

    // A verified member with an API token, owner of a customer.
    const now = core.clock.now();
    const customer = await core.db.insertInto('customers').values({ name: 'Bench SARL', country: 'FR', postal_address: null, contact_user_id: null, dpo_name: null, dpo_email: null, created_at: now, updated_at: now }).returning('id').executeTakeFirstOrThrow();
    const user = await core.db
      .insertInto('users')
      .values({ email: 'bench@example.test', name: 'Bench', phone: null, locale: 'en', password_hash: 'x', email_verified_at: now, staff_role: null, totp_secret_sealed: null, totp_enabled_at: null, totp_last_counter: null, created_at: now, updated_at: now })
      .returning('id')
      .executeTakeFirstOrThrow();
    await core.db.insertInto('memberships').values({ customer_id: customer.id, user_id: user.id, role: 'owner', created_at: now }).execute();
    const token = newApiTokenValue();
    await core.db.insertInto('api_tokens').values({ user_id: user.id, name: 'bench', token_hash: token.hash, prefix: token.prefix, created_at: now, last_used_at: null, expires_at: null, revoked_at: null }).execute();
    const headers = { authorization: `Bearer ${token.token}` };

    await app.http.listen({ port: 0, host: '127.0.0.1' });
    const havreBase = `http://127.0.0.1:${(app.http.server.address() as { port: number }).port}`;
    const created = await fetch(`${havreBase}/api/v1/tenants`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Bench' }) });
    if (created.status !== 201) throw new Error(`tenant creation: ${created.status} ${await created.text()}`);
    const tenantId = ((await created.json()) as { id: string }).id;
    const tenant = await core.db.selectFrom('tenants').select('tenant_database_id').where('id', '=', tenantId).executeTakeFirstOrThrow();

    log(`inserting ${CONTACTS} contacts`);
    await app.modules.fleet.connections.withTenant(tenant.tenant_database_id!, (c) =>
      c.query(
        `INSERT INTO contacts (id, title, first_name, last_name, email, phone, position, created_at, updated_at)
         SELECT gen_random_uuid(), 'ms', 'Anne' || i, 'Martin' || lpad(i::text, 4, '0'), 'anne' || i || '@example.test', '+33 1 00 00 00 00', 'Comptable', now(), now()
           FROM generate_series(1, $1) i`,
        [CONTACTS],
      ),
    );

    // The SAME statement Havre runs: captured from the generic record SQL.
    let captured: { text: string; values: unknown[] } | null = null;
    const recorder = { query: async (text: string, values: unknown[]) => ((captured = { text, values }), { rows: [] }) } as unknown as pg.ClientBase;
    await listRecords(recorder, contacts, { limit: 50 });
    const statement = captured as unknown as { text: string; values: unknown[] };

    // The bare handler: same database, same tenant role, its own warm pool, JSON.stringify of the rows.
    const target = await core.db
      .selectFrom('tenant_databases')
      .select(['database_name', 'role_name', 'role_password_sealed', 'id'])
      .where('id', '=', tenant.tenant_database_id!)
      .executeTakeFirstOrThrow();
    const password = core.secrets.open(target.role_password_sealed, `tenant-db:${target.id}`);
    const tenantUrl = new URL(serverUrl);
    tenantUrl.username = target.role_name;
    tenantUrl.password = password;
    tenantUrl.pathname = `/${target.database_name}`;
    barePool = new pg.Pool({ connectionString: tenantUrl.toString(), max: 3 });
    const pool = barePool;
    bare.get('/contacts', async () => {
      const { rows } = await pool.query(statement.text, statement.values);
      return { items: rows.slice(0, 50), nextCursor: null };
    });
    await bare.listen({ port: 0, host: '127.0.0.1' });
    const bareUrl = `http://127.0.0.1:${(bare.server.address() as { port: number }).port}/contacts`;
    const havreUrl = `${havreBase}/api/v1/tenants/${tenantId}/contacts?limit=50`;

    const check = await fetch(havreUrl, { headers });
    const body = (await check.json()) as { items: unknown[] };
    if (check.status !== 200 || body.items.length !== 50) throw new Error(`Havre list: ${check.status}`);

    log('warming up');
    await timeEach(300, () => fetch(havreUrl, { headers }).then((r) => r.arrayBuffer()));
    await timeEach(300, () => fetch(bareUrl).then((r) => r.arrayBuffer()));

    log(`measuring latency: ${ROUNDS} interleaved rounds of ${PER_ROUND} requests each`);
    const havreMs: number[] = [];
    const bareMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      havreMs.push(...(await timeEach(PER_ROUND, () => fetch(havreUrl, { headers }).then((r) => r.arrayBuffer()))));
      bareMs.push(...(await timeEach(PER_ROUND, () => fetch(bareUrl).then((r) => r.arrayBuffer()))));
    }
    log(`measuring throughput: ${IN_FLIGHT} in flight, ${THROUGHPUT_MS} ms each, twice interleaved`);
    const havreRps: number[] = [];
    const bareRps: number[] = [];
    for (let i = 0; i < 2; i++) {
      havreRps.push(await throughput(havreUrl, headers, IN_FLIGHT, THROUGHPUT_MS));
      bareRps.push(await throughput(bareUrl, {}, IN_FLIGHT, THROUGHPUT_MS));
    }

    const h = summarize(havreMs);
    const b = summarize(bareMs);
    const hRps = Math.round(havreRps.reduce((a, v) => a + v, 0) / havreRps.length);
    const bRps = Math.round(bareRps.reduce((a, v) => a + v, 0) / bareRps.length);
    const overheadP50 = Math.round((h.p50 / b.p50 - 1) * 1000) / 10;
    const overheadMean = Math.round((h.mean / b.mean - 1) * 1000) / 10;
    const overheadThroughput = Math.round((bRps / hRps - 1) * 1000) / 10;
    const meets = overheadP50 <= 20 && overheadThroughput <= 20;
    const json = {
      contacts: CONTACTS,
      pageSize: 50,
      requestsPerSide: havreMs.length,
      havre: { latencyMs: h, requestsPerSecond: hRps },
      bare: { latencyMs: b, requestsPerSecond: bRps },
      overheadPercent: { p50: overheadP50, mean: overheadMean, throughput: overheadThroughput },
      target: 'Havre overhead ≤ 20 %',
      meetsTarget: meets,
      statement: statement.text,
      machine: machine(),
    };
    const markdown = `# Workspace read: list 50 contacts

${CONTACTS} contacts in one tenant database; \`GET /api/v1/tenants/{id}/contacts?limit=50\` with a Bearer token,
against a bare Fastify + pg handler running the same statement as the same tenant role, same run, interleaved.

| path | p50 ms | p95 ms | mean ms | req/s (${IN_FLIGHT} in flight) |
| --- | --- | --- | --- | --- |
| bare Fastify + pg (baseline) | ${b.p50} | ${b.p95} | ${b.mean} | ${bRps} |
| Havre full path | ${h.p50} | ${h.p95} | ${h.mean} | ${hRps} |

Overhead: **${overheadP50} %** at p50, ${overheadMean} % on the mean, ${overheadThroughput} % in throughput. Target ≤ 20 %: ${meets ? 'met' : '**not met**'}.

Statement: \`${statement.text}\`

Machine: ${JSON.stringify(json.machine)}
`;
    return { name: 'workspace-read', json, markdown };
  } finally {
    await bare.close().catch(() => {});
    await barePool?.end().catch(() => {});
    await havre.close();
  }
}
