/**
 * TEN-1: a tenant's own role, with its REAL credentials, can reach nothing but its own database.
 * SEC-3: the server admin URL and tenant passwords are sealed in the control plane.
 */
import { LATEST_SCHEMA_VERSION } from '../workspace/tenant-schema.ts';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { acquireDatabase, adminUrlOf, fleetOf, registerRegionServers, urlAs, withClient } from './fleet-test-helpers.ts';
import type { TenantDatabaseView } from './index.ts';
import { tenantPasswordContext } from './provisioner.ts';

let ctx: TestContext;
let a: TenantDatabaseView;
let b: TenantDatabaseView;
let passwordA: string;
let passwordB: string;
let frUrl: string;

beforeAll(async () => {
  ctx = await createTestContext({ config: { tenants: { warmPoolSize: 0, roleConnectionLimit: 7 } } });
  await registerRegionServers(ctx);
  frUrl = adminUrlOf(ctx, 'fr');
  a = await acquireDatabase(ctx, 'fr');
  b = await acquireDatabase(ctx, 'fr');
  const sealed = async (id: string) => (await ctx.core.db.selectFrom('tenant_databases').select('role_password_sealed').where('id', '=', id).executeTakeFirstOrThrow()).role_password_sealed;
  passwordA = ctx.core.secrets.open(await sealed(a.id), tenantPasswordContext(a.id));
  passwordB = ctx.core.secrets.open(await sealed(b.id), tenantPasswordContext(b.id));
});

afterAll(async () => {
  if (!ctx) return;
  const fleet = fleetOf(ctx);
  for (const t of [a, b]) if (t) await fleet.databases.drop(t.id);
  await fleet.connections.closeAll();
  await ctx.close();
});

/** Connects as tenant A (its real role and password) to `database`. */
async function asTenantA<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return withClient(urlAs(frUrl, a.roleName, passwordA, database), fn);
}

describe('tenant isolation', () => {
  it('[TEN-1] a tenant role works in its own database, through withTenant and with its credentials', async () => {
    const who = await fleetOf(ctx).connections.withTenant(a.id, async (c) => (await c.query('SELECT current_user AS u, current_database() AS d')).rows[0]);
    expect(who).toEqual({ u: a.roleName, d: a.databaseName });
    await asTenantA(a.databaseName, async (c) => {
      await c.query('CREATE TABLE secrets_a (v text)');
      await c.query("INSERT INTO secrets_a VALUES ('mine')");
      const meta = await c.query('SELECT schema_version FROM havre_meta');
      expect(meta.rows).toEqual([{ schema_version: LATEST_SCHEMA_VERSION }]);
    });
    await withClient(urlAs(frUrl, b.roleName, passwordB, b.databaseName), async (c) => {
      await c.query('CREATE TABLE secrets_b (v text)');
      await c.query("INSERT INTO secrets_b VALUES ('theirs')");
    });
  });

  it('[TEN-1] cannot connect to another tenant database, nor read or write its tables', async () => {
    await expect(asTenantA(b.databaseName, (c) => c.query('SELECT 1'))).rejects.toThrow(/permission denied for database/);
    // From inside its own database, cross-database references are refused too.
    await asTenantA(a.databaseName, async (c) => {
      await expect(c.query(`SELECT * FROM ${b.databaseName}.public.secrets_b`)).rejects.toThrow(/cross-database references are not implemented/);
      await expect(c.query(`INSERT INTO ${b.databaseName}.public.secrets_b VALUES ('x')`)).rejects.toThrow(/cross-database references are not implemented/);
    });
    // B's data is untouched.
    const rows = await withClient(urlAs(frUrl, b.roleName, passwordB, b.databaseName), async (c) => (await c.query('SELECT v FROM secrets_b')).rows);
    expect(rows).toEqual([{ v: 'theirs' }]);
  });

  it('[TEN-1] cannot connect to postgres or template1 (CONNECT revoked from PUBLIC), nor template0', async () => {
    for (const db of ['postgres', 'template1']) {
      await expect(asTenantA(db, (c) => c.query('SELECT 1'))).rejects.toThrow(/permission denied for database/);
    }
    await expect(asTenantA('template0', (c) => c.query('SELECT 1'))).rejects.toThrow(/not currently accepting connections/);
  });

  it('[TEN-1] cannot read pg_authid, run programs, read server files, create roles or become another role', async () => {
    await asTenantA(a.databaseName, async (c) => {
      await expect(c.query('SELECT * FROM pg_authid')).rejects.toThrow(/permission denied/);
      await expect(c.query("COPY (SELECT 1) TO PROGRAM 'id'")).rejects.toThrow(/permission denied|must be superuser|pg_execute_server_program/);
      await expect(c.query("SELECT lo_import('/etc/passwd')")).rejects.toThrow(/permission denied|must be superuser/);
      await expect(c.query("SELECT pg_read_file('/etc/passwd')")).rejects.toThrow(/permission denied/);
      await expect(c.query("COPY secrets_a FROM '/etc/passwd'")).rejects.toThrow(/permission denied|must be superuser|pg_read_server_files/);
      await expect(c.query("CREATE ROLE intruder LOGIN PASSWORD 'x'")).rejects.toThrow(/permission denied/);
      await expect(c.query(`SET ROLE ${b.roleName}`)).rejects.toThrow(/permission denied/);
      await expect(c.query(`SET SESSION AUTHORIZATION ${b.roleName}`)).rejects.toThrow(/permission denied/);
      await expect(c.query('CREATE DATABASE intruder')).rejects.toThrow(/permission denied/);
      await expect(c.query(`ALTER ROLE ${b.roleName} PASSWORD 'x'`)).rejects.toThrow(/permission denied/);
    });
  });

  it('[TEN-1] the tenant role has no superuser, createrole, createdb, replication or bypassrls right and a connection limit', async () => {
    const roles = await withClient(frUrl, async (c) =>
      (
        await c.query(
          `SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolcanlogin, rolconnlimit
             FROM pg_roles WHERE rolname = ANY($1) ORDER BY rolname`,
          [[a.roleName, b.roleName]],
        )
      ).rows,
    );
    expect(roles).toHaveLength(2);
    for (const r of roles) {
      expect(r).toMatchObject({ rolsuper: false, rolcreaterole: false, rolcreatedb: false, rolreplication: false, rolbypassrls: false, rolinherit: false, rolcanlogin: true, rolconnlimit: 7 });
    }
    // The database belongs to the server's admin role (not the tenant: it must not alter it);
    // PUBLIC has no right on it; the role is a member of nothing.
    const db = await withClient(frUrl, async (c) =>
      (
        await c.query(
          `SELECT pg_get_userbyid(d.datdba) AS owner,
                  EXISTS (SELECT 1 FROM aclexplode(d.datacl) x WHERE x.grantee = 0) AS public_rights,
                  (SELECT count(*)::int FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = $2) AS memberships
             FROM pg_database d WHERE d.datname = $1`,
          [a.databaseName, a.roleName],
        )
      ).rows[0],
    );
    expect(db).toEqual({ owner: decodeURIComponent(new URL(frUrl).username), public_rights: false, memberships: 0 });
    // The public schema of the tenant database is the tenant's, closed to PUBLIC.
    const schema = await asTenantA(a.databaseName, async (c) =>
      (await c.query(`SELECT pg_get_userbyid(nspowner) AS owner, EXISTS (SELECT 1 FROM aclexplode(nspacl) x WHERE x.grantee = 0) AS public_rights FROM pg_namespace WHERE nspname = 'public'`)).rows[0],
    );
    expect(schema).toEqual({ owner: a.roleName, public_rights: false });
    // …and it owns what it creates there.
    const table = await asTenantA(a.databaseName, async (c) => {
      await c.query('CREATE TABLE owned_by_me (v int)');
      await c.query('CREATE SCHEMA app; CREATE TABLE app.t (v int)');
      return (await c.query(`SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname = 'owned_by_me'`)).rows[0];
    });
    expect(table).toEqual({ owner: a.roleName });
  });

  it('[TEN-1] cannot alter its own database (IS_TEMPLATE, CONNECTION LIMIT, SET, RENAME) nor open it to PUBLIC', async () => {
    await asTenantA(a.databaseName, async (c) => {
      const db = a.databaseName;
      await expect(c.query(`ALTER DATABASE ${db} IS_TEMPLATE true`)).rejects.toThrow(/must be owner/);
      await expect(c.query(`ALTER DATABASE ${db} CONNECTION LIMIT 1000`)).rejects.toThrow(/must be owner/);
      await expect(c.query(`ALTER DATABASE ${db} SET search_path = public, pg_catalog`)).rejects.toThrow(/must be owner/);
      await expect(c.query(`ALTER DATABASE ${db} RENAME TO zz`)).rejects.toThrow(/must be owner|permission denied/);
      // No grant option: the statement does nothing (a warning), PUBLIC still has no right.
      await c.query(`GRANT CONNECT ON DATABASE ${db} TO PUBLIC`).catch(() => {});
      await c.query(`GRANT CONNECT ON DATABASE ${db} TO ${b.roleName}`).catch(() => {});
    });
    const acl = await withClient(frUrl, async (c) => (await c.query(`SELECT datacl::text[] AS acl FROM pg_database WHERE datname = $1`, [a.databaseName])).rows[0].acl as string[]);
    expect(acl.filter((e) => e.startsWith('=') || e.startsWith(`${b.roleName}=`))).toEqual([]);
    await expect(withClient(urlAs(frUrl, b.roleName, passwordB, a.databaseName), (c) => c.query('SELECT 1'))).rejects.toThrow(/permission denied for database/);
  });

  it('[TEN-1] cannot see the sessions or statistics of other tenants (pg_stat_activity, pg_stat_database closed)', async () => {
    await asTenantA(a.databaseName, async (c) => {
      await expect(c.query('SELECT pid, usename, datname FROM pg_stat_activity')).rejects.toThrow(/permission denied/);
      await expect(c.query('SELECT datname, xact_commit FROM pg_stat_database')).rejects.toThrow(/permission denied/);
      await expect(c.query('SELECT * FROM pg_stat_get_activity(NULL)')).rejects.toThrow(/permission denied/);
      // Its own normal use still works.
      await c.query('CREATE TABLE IF NOT EXISTS stats_ok (v int); INSERT INTO stats_ok VALUES (1)');
      expect((await c.query('SELECT count(*)::int AS n FROM stats_ok')).rows).toEqual([{ n: 1 }]);
      expect((await c.query('SELECT pg_backend_pid() > 0 AS ok')).rows).toEqual([{ ok: true }]);
    });
  });

  it('[TEN-1] a tenant that changes its own password does not lock Havre out: the sealed one is restored', async () => {
    const fleet = fleetOf(ctx);
    await asTenantA(a.databaseName, (c) => c.query(`ALTER ROLE ${a.roleName} PASSWORD 'hijacked-by-tenant'`));
    await fleet.connections.close(a.id);
    const who = await fleet.connections.withTenant(a.id, async (c) => (await c.query('SELECT current_user AS u')).rows[0]);
    expect(who).toEqual({ u: a.roleName });
    // The sealed password works again, the tenant's does not.
    await asTenantA(a.databaseName, (c) => c.query('SELECT 1'));
    await expect(withClient(urlAs(frUrl, a.roleName, 'hijacked-by-tenant', a.databaseName), (c) => c.query('SELECT 1'))).rejects.toThrow(/password authentication failed/);
  });
});

describe('secrets at rest', () => {
  it('[SEC-3] the server admin URL and tenant role passwords are not in clear in the control-plane database', async () => {
    const servers = await sql<Record<string, unknown>>`SELECT * FROM database_servers`.execute(ctx.core.db);
    const dbs = await sql<Record<string, unknown>>`SELECT * FROM tenant_databases`.execute(ctx.core.db);
    const dump = JSON.stringify([servers.rows, dbs.rows]);
    const frPassword = decodeURIComponent(new URL(frUrl).password);
    expect(dump).not.toContain(frPassword);
    expect(dump).not.toContain(frUrl);
    expect(dump).not.toContain(passwordA);
    expect(dump).not.toContain(passwordB);
    for (const row of servers.rows) expect(String(row.admin_url_sealed)).toMatch(/^v1\./);
    for (const row of dbs.rows) expect(String(row.role_password_sealed)).toMatch(/^v1\./);
    // Nor on the database server: the role stores a SCRAM verifier, never the password.
    const stored = await withClient(frUrl, async (c) => (await c.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [a.roleName])).rows[0].rolpassword as string);
    expect(stored).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(stored).not.toContain(passwordA);
  });

  it('[SEC-3] a sealed password moved to another row fails to open', async () => {
    const sealedB = (await ctx.core.db.selectFrom('tenant_databases').select('role_password_sealed').where('id', '=', b.id).executeTakeFirstOrThrow()).role_password_sealed;
    expect(() => ctx.core.secrets.open(sealedB, tenantPasswordContext(a.id))).toThrow();
    const sealedServer = (await ctx.core.db.selectFrom('database_servers').select(['id', 'admin_url_sealed']).execute())!;
    expect(() => ctx.core.secrets.open(sealedServer[0]!.admin_url_sealed, `server:${sealedServer[1]!.id}`)).toThrow();
    // Pasting B's sealed password onto A's row: connecting as A now fails instead of using B's secret.
    const sealedA = (await ctx.core.db.selectFrom('tenant_databases').select('role_password_sealed').where('id', '=', a.id).executeTakeFirstOrThrow()).role_password_sealed;
    const fleet = fleetOf(ctx);
    await fleet.connections.close(a.id);
    await ctx.core.db.updateTable('tenant_databases').set({ role_password_sealed: sealedB }).where('id', '=', a.id).execute();
    try {
      await expect(fleet.connections.withTenant(a.id, (c) => c.query('SELECT 1'))).rejects.toThrow(/authenticate|Unsupported state/);
    } finally {
      await ctx.core.db.updateTable('tenant_databases').set({ role_password_sealed: sealedA }).where('id', '=', a.id).execute();
    }
  });
});
