/** Registering database servers: checks, hardening, sealed URL, admin routes, CLI and metrics. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { runCli } from '../../../test/cli.ts';
import { adminUrlOf, fleetOf, staffClient, urlAs, withClient } from './fleet-test-helpers.ts';

let ctx: TestContext;

beforeAll(async () => {
  ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0 } } });
});

afterAll(async () => {
  if (!ctx) return;
  await fleetOf(ctx).connections.closeAll();
  await ctx.close();
});

describe('database servers', () => {
  it('[TEN-2] an admin registers servers per region over HTTP; the answer never holds the URL or its password', async () => {
    const http = await staffClient(ctx);
    const frUrl = adminUrlOf(ctx, 'fr');
    const res = await http.post('/api/v1/admin/servers', { name: 'paris-1', region: 'fr', url: frUrl, maxTenants: 50 });
    expect(res.status).toBe(201);
    expect(res.body.server).toMatchObject({ name: 'paris-1', region: 'fr', status: 'active', maxTenants: 50, assignedDatabases: 0, pooledDatabases: 0 });
    expect(res.body.server.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(res.body.warnings).toEqual([]);
    const list = await http.get('/api/v1/admin/servers');
    expect(list.status).toBe(200);
    expect(list.body.servers.map((s: any) => s.name)).toEqual(['paris-1']);
    const password = decodeURIComponent(new URL(frUrl).password);
    expect(JSON.stringify([res.body, list.body])).not.toContain(password);
    // Recorded in the audit log, without the URL.
    const audit = await ctx.core.db.selectFrom('audit_log').selectAll().where('action', '=', 'server.added').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor_type: 'staff', subject_type: 'database_server', subject_id: res.body.server.id });
    expect(JSON.stringify(audit[0]!.data)).not.toContain(password);
  });

  it('refuses bad registrations with stable codes', async () => {
    const http = await staffClient(ctx);
    const frUrl = adminUrlOf(ctx, 'fr');
    const deUrl = adminUrlOf(ctx, 'de');
    const post = (body: unknown) => http.post('/api/v1/admin/servers', body);
    expect((await post({ region: 'us', url: deUrl })).body.code).toBe('unknown_region');
    expect((await post({ region: 'de', url: deUrl, extra: 1 })).body.code).toBe('invalid_request');
    expect((await post({ region: 'de', url: 'mysql://x@y/z' })).body.code).toBe('invalid_server_url');
    expect((await post({ region: 'fr', url: frUrl })).body.code).toBe('server_already_registered');
    expect((await post({ name: 'paris-1', region: 'de', url: deUrl })).body.code).toBe('server_name_taken');
    const wrongPassword = new URL(deUrl);
    wrongPassword.password = 'not-the-password';
    const unreachable = await post({ region: 'de', url: wrongPassword.toString() });
    expect(unreachable.status).toBe(400);
    expect(unreachable.body.code).toBe('server_unreachable');
    expect(JSON.stringify(unreachable.body)).not.toContain('not-the-password');
  });

  it('refuses URLs that name local files (sslrootcert, sslcert, sslkey, sslcrl) or cannot be parsed with a 400, never a 500', async () => {
    const http = await staffClient(ctx);
    const post = (url: string) => http.post('/api/v1/admin/servers', { region: 'fr', url });
    for (const param of ['sslrootcert=/nonexistent', 'sslcert=/etc/passwd', 'sslkey=/etc/shadow', 'SSLCRL=/x']) {
      const res = await post(`postgres://u:SECRETPW@127.0.0.1:1/postgres?sslmode=require&${param}`);
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 400, code: 'invalid_server_url' });
      expect(JSON.stringify(res.body)).toContain(param.split('=')[0]!.toLowerCase());
      expect(JSON.stringify(res.body)).not.toContain('SECRETPW');
    }
    const badPercent = await post('postgres://u:SECRET%zz@127.0.0.1:1/postgres');
    expect(badPercent.status).toBe(400);
    expect(JSON.stringify(badPercent.body)).not.toContain('SECRET');
    const refused = await post('postgres://u:SECRETPW@127.0.0.1:1/postgres?sslmode=require');
    expect(refused).toMatchObject({ status: 400, body: { code: 'server_unreachable' } });
  });

  it('refuses a role that cannot create databases and roles', async () => {
    const deUrl = adminUrlOf(ctx, 'de');
    const role = `weak_${Math.random().toString(36).slice(2, 10)}`;
    await withClient(deUrl, (c) => c.query(`CREATE ROLE ${role} LOGIN PASSWORD 'weak-pass'`));
    try {
      const err = await fleetOf(ctx).servers.add({ region: 'de', adminUrl: urlAs(deUrl, role, 'weak-pass', 'postgres') }).catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, code: expect.stringMatching(/server_privileges_insufficient|server_unreachable/) });
    } finally {
      await withClient(deUrl, (c) => c.query(`DROP ROLE ${role}`));
    }
  });

  it('only staff admins may list or register servers', async () => {
    expect((await ctx.client().get('/api/v1/admin/servers')).status).toBe(401);
    const support = await staffClient(ctx, 'support');
    const res = await support.get('/api/v1/admin/servers');
    expect(res.status).toBe(403);
    expect((await support.post('/api/v1/admin/servers', { region: 'de', url: adminUrlOf(ctx, 'de') })).status).toBe(403);
  });

  it('[TEN-1] registration hardens the server: PUBLIC may no longer connect to postgres and template1', async () => {
    const open = await withClient(adminUrlOf(ctx, 'fr'), async (c) =>
      (
        await c.query(`SELECT datname FROM pg_database WHERE datname IN ('postgres', 'template1')
             AND (datacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(datacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CONNECT'))`)
      ).rows,
    );
    expect(open).toEqual([]);
  });

  it('ensureEmbedded registers each embedded server once and is idempotent', async () => {
    const fleet = fleetOf(ctx);
    const list = [{ name: 'embedded-de', region: 'de', adminUrl: adminUrlOf(ctx, 'de') }];
    await fleet.servers.ensureEmbedded(list);
    await fleet.servers.ensureEmbedded(list);
    const servers = await fleet.servers.list();
    expect(servers.filter((s) => s.name === 'embedded-de')).toHaveLength(1);
    expect(servers.map((s) => s.region).sort()).toEqual(['de', 'fr']);
  });

  it('[OPS-2] exposes pooled databases per server and open tenant connections as Prometheus gauges; readiness checks the fleet', async () => {
    const fleet = fleetOf(ctx);
    const de = (await fleet.servers.list()).find((s) => s.name === 'embedded-de')!;
    expect(await fleet.pool.refill(de.id, { target: 1 })).toBe(1);
    const metrics = await ctx.client().get('/metrics');
    expect(metrics.body).toMatch(/havre_fleet_pooled_databases\{server="embedded-de",region="de"\} 1/);
    expect(metrics.body).toContain('havre_tenant_connections_open');
    const ready = await ctx.client().get('/readyz');
    expect(ready.body.checks.fleet).toBe(true);
    const pooled = await ctx.core.db.selectFrom('tenant_databases').select('id').where('state', '=', 'pooled').execute();
    for (const p of pooled) await fleet.databases.drop(p.id);
  });

  it('the CLI lists servers (`havre server list`) and refuses an unknown region (`havre server add`)', { timeout: 60_000 }, async () => {
    const list = await runCli(ctx, ['server', 'list']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/paris-1\s+fr\s+127\.0\.0\.1:\d+\s+active\s+0\/50/);
    const json = await runCli(ctx, ['--json', 'server', 'list']);
    expect(JSON.parse(json.stdout).map((s: any) => s.name)).toEqual(['embedded-de', 'paris-1']);
    const bad = await runCli(ctx, ['server', 'add', '--region', 'us', '--url', adminUrlOf(ctx, 'de')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown_region');
  });

  it('`havre server add --url -` reads the URL from standard input, keeping the password out of argv', { timeout: 60_000 }, async () => {
    const fromStdin = await runCli(ctx, ['server', 'add', '--region', 'us', '--url', '-'], `${adminUrlOf(ctx, 'de')}\n`);
    expect(fromStdin.code).toBe(2);
    expect(fromStdin.stderr).toContain('unknown_region'); // the URL was read; the region is what is wrong
    const empty = await runCli(ctx, ['server', 'add', '--region', 'fr', '--url', '-'], '');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain('expects the URL on standard input');
  });
});
