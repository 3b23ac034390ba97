/** Helpers shared by the fleet tests (not a test file itself). */
import pg from 'pg';
import type { TestContext, HttpClient } from '../../../test/context.ts';
import { createSession } from '../accounts/authn.ts';
import { isNoPooledDatabase, type FleetModule, type ServerView, type TenantDatabaseView } from './index.ts';

export function fleetOf(ctx: TestContext): FleetModule {
  return ctx.app.modules.fleet;
}

/** Registers the harness's fr and de clusters through the real `servers.add`. */
export async function registerRegionServers(ctx: TestContext, options: { maxTenants?: number } = {}): Promise<Record<string, ServerView>> {
  const out: Record<string, ServerView> = {};
  for (const s of ctx.regionServers) {
    out[s.region] = await fleetOf(ctx).servers.add({ name: `test-${s.region}`, region: s.region, adminUrl: s.adminUrl, ...options });
  }
  return out;
}

export function adminUrlOf(ctx: TestContext, region: string): string {
  return ctx.regionServers.find((s) => s.region === region)!.adminUrl;
}

/** Runs `fn` with a superuser client on the given cluster URL. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** A URL for `database` on the cluster of `adminUrl`, as `role` with `password`. */
export function urlAs(adminUrl: string, role: string, password: string, database: string): string {
  const url = new URL(adminUrl);
  url.username = role;
  url.password = password;
  url.pathname = `/${database}`;
  return url.toString();
}

/** An operator staff member (role `admin` by default) signed in on a fresh HTTP client. */
export async function staffClient(ctx: TestContext, role: 'admin' | 'support' | 'billing' = 'admin'): Promise<HttpClient> {
  const now = ctx.clock.now();
  const user = await ctx.core.db
    .insertInto('users')
    .values({ email: `staff-${Math.random().toString(36).slice(2)}@havre.test`, name: 'Staff', locale: 'en', password_hash: 'x', email_verified_at: now, staff_role: role, totp_secret_sealed: null, totp_enabled_at: now, totp_last_counter: null, created_at: now, updated_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const session = await createSession(ctx.core.db, ctx.clock, { userId: user.id, ttlHours: 1, secondFactorPending: false, ip: null, userAgent: null });
  const http = ctx.client();
  http.cookie = `havre_session=${session.token}`;
  http.csrfToken = session.csrfToken;
  return http;
}

/**
 * What a caller of `acquire` does (as tenants.create): claim in a transaction; with no pooled
 * database ready, provision one outside any transaction and claim again.
 */
export async function acquireDatabase(ctx: TestContext, region: string): Promise<TenantDatabaseView> {
  const fleet = fleetOf(ctx);
  let prefer: string | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.core.db.transaction().execute((trx) => fleet.databases.acquire(region, trx, { prefer }));
    } catch (err) {
      if (!isNoPooledDatabase(err) || attempt >= 4) throw err;
      prefer = await fleet.databases.ensureAvailable(region);
    }
  }
}

/** afterAll of fleet tests: drops every live tenant database of the context, then closes it. */
export async function dropAllAndClose(ctx: TestContext | undefined): Promise<void> {
  if (!ctx) return;
  const fleet = fleetOf(ctx);
  const rows = await ctx.core.db.selectFrom('tenant_databases').select('id').where('state', 'in', ['pooled', 'assigned']).execute();
  await Promise.all(rows.map((r) => fleet.databases.drop(r.id)));
  await fleet.connections.closeAll();
  await ctx.close();
}
