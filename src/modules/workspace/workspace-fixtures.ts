/**
 * Test helpers for workspace tests (used by tests of this and other modules; not loaded by the
 * application): a tenant with its owner, and records made through the real API.
 */
import { expect } from 'vitest';
import type { HttpClient, TestContext } from '../../../test/context.ts';
import { createMember, type Member } from '../../../test/factories.ts';

export interface Workspace {
  owner: Member;
  tenantId: string;
  /** `/api/v1/tenants/<id>` — prefix of every workspace route. */
  base: string;
  tenantDatabaseId: string;
}

/** A new customer with its owner and one tenant (servers must be registered first). */
export async function createWorkspace(ctx: TestContext, options: { region?: string; name?: string } = {}): Promise<Workspace> {
  const owner = await createMember(ctx);
  const res = await owner.http.post('/api/v1/tenants', { name: options.name ?? 'Workspace', ...(options.region && { region: options.region }) });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  const row = await ctx.core.db.selectFrom('tenants').select('tenant_database_id').where('id', '=', res.body.id).executeTakeFirstOrThrow();
  return { owner, tenantId: res.body.id, base: `/api/v1/tenants/${res.body.id}`, tenantDatabaseId: row.tenant_database_id! };
}

/** POSTs `body` to `<base>/<path>` and returns the created record (fails the test unless 201). */
export async function createRecord(http: HttpClient, url: string, body: Record<string, unknown>): Promise<Record<string, any>> {
  const res = await http.post(url, body);
  expect(res.status, `${url} ${JSON.stringify(res.body)}`).toBe(201);
  return res.body;
}

/** A member of the workspace's customer with `role`, signed in. */
export async function addMember(ctx: TestContext, workspace: Workspace, role: Member['role']): Promise<Member> {
  return createMember(ctx, { role, customerId: workspace.owner.customerId });
}

/** Runs `sql` inside the tenant's database, as the tenant role (through the fleet's pools). */
export async function tenantQuery<T = any>(ctx: TestContext, workspace: Workspace, sql: string, params: unknown[] = []): Promise<T[]> {
  return ctx.app.modules.fleet.connections.withTenant(workspace.tenantDatabaseId, async (c) => (await c.query(sql, params)).rows as T[]);
}
