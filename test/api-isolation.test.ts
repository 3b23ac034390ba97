/**
 * TEN-1 at the API level: a member of customer X gets 404 for every id of customer Y, on every
 * member route of the OpenAPI document that takes an id — including routes added later, which
 * this test finds by itself. Staff routes (/api/v1/admin) are out of scope here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { createTestContext, type HttpClient, type HttpResponse, type TestContext } from './context.ts';
import { createMember, registerServers, type Member } from './factories.ts';

let ctx: TestContext;
let x: Member;
let y: Member;
let yCollaborator: Member;
/** Customer Y's real ids, by kind. */
let yIds: Record<'customer' | 'user' | 'tenant' | 'invitation' | 'apiToken', string>;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  x = await createMember(ctx);
  y = await createMember(ctx);
  yCollaborator = await createMember(ctx, { role: 'collaborator', customerId: y.customerId });
  await x.http.post('/api/v1/tenants', { name: 'X workspace' });
  const tenant = await y.http.post('/api/v1/tenants', { name: 'Y workspace' });
  expect(tenant.status).toBe(201);

  const now = ctx.clock.now();
  const invitation = await ctx.core.db
    .insertInto('invitations')
    .values({ customer_id: y.customerId, email: 'invitee@example.test', role: 'collaborator', invited_by: y.userId, token_hash: randomBytes(32).toString('hex'), created_at: now, expires_at: new Date(now.getTime() + 86_400_000), accepted_at: null, revoked_at: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  const token = await ctx.core.db
    .insertInto('api_tokens')
    .values({ user_id: y.userId, name: 'y token', token_hash: randomBytes(32).toString('hex'), prefix: 'hvr_yyyyyyyy', created_at: now, last_used_at: null, expires_at: null, revoked_at: null })
    .returning('id')
    .executeTakeFirstOrThrow();
  yIds = { customer: y.customerId, user: yCollaborator.userId, tenant: tenant.body.id, invitation: invitation.id, apiToken: token.id };
});
afterAll(async () => ctx?.close());

interface Operation {
  method: string;
  path: string;
  params: string[];
  query: { name: string; schema: JsonSchema }[];
  body: JsonSchema | null;
}

type JsonSchema = Record<string, any>;

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Member routes of the OpenAPI document that take path parameters. */
function operationsWithIds(spec: any): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<any>(spec.paths)) {
    if (!path.startsWith('/api/v1/') || path.startsWith('/api/v1/admin') || !path.includes('{')) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const parameters: any[] = [...(item.parameters ?? []), ...(op.parameters ?? [])];
      out.push({
        method: method.toUpperCase(),
        path,
        params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
        query: parameters.filter((p) => p.in === 'query' && p.required).map((p) => ({ name: p.name, schema: p.schema ?? {} })),
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
      });
    }
  }
  return out;
}

/**
 * The kind of id a path parameter holds, from its name (`userId`) or, for a bare `{id}`, from the
 * path segment before it (`/tenants/{id}`). Null when unknown: then every kind of Y's ids is tried.
 */
function kindOf(path: string, param: string): keyof typeof yIds | null {
  const name = param === 'id' ? (new RegExp(`/([\\w-]+)/\\{${param}\\}`).exec(path)?.[1] ?? '') : param.replace(/Id$/, '');
  const singular = name.toLowerCase().replace(/-/g, '').replace(/s$/, '');
  const kinds: Record<string, keyof typeof yIds> = { customer: 'customer', user: 'user', member: 'user', tenant: 'tenant', invitation: 'invitation', token: 'apiToken', apitoken: 'apiToken' };
  return kinds[singular] ?? null;
}

/** Every assignment of Y's ids to the parameters: known kinds fixed, unknown ones tried with each id. */
function assignments(op: Operation): Record<string, string>[] {
  let out: Record<string, string>[] = [{}];
  for (const param of op.params) {
    const kind = kindOf(op.path, param);
    const values = kind ? [yIds[kind]] : [...new Set(Object.values(yIds))];
    out = out.flatMap((a) => values.map((v) => ({ ...a, [param]: v })));
  }
  return out;
}

/** A value that satisfies `schema` as far as a generic generator can (`all`: optional properties too). */
function sample(schema: JsonSchema, all: boolean): unknown {
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return schema.enum[0];
  const variants = schema.anyOf ?? schema.oneOf;
  if (variants) return sample(variants.find((v: JsonSchema) => v.type !== 'null') ?? variants[0], all);
  switch (Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type) {
    case 'object': {
      const required: string[] = schema.required ?? [];
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries<JsonSchema>(schema.properties ?? {})) if (all || required.includes(k)) out[k] = sample(v, all);
      return out;
    }
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, () => sample(schema.items ?? {}, all));
    case 'integer':
    case 'number':
      return schema.minimum ?? schema.exclusiveMinimum ?? 1;
    case 'boolean':
      return false;
    case 'string':
      if (schema.format === 'email') return 'someone@example.com';
      if (schema.format === 'uuid') return yIds.user;
      if (schema.format === 'uri') return 'https://example.com/';
      if (schema.format === 'date-time') return '2026-11-23T09:00:00.000Z';
      if (schema.format === 'date') return '2026-11-23';
      if (schema.pattern === '^[A-Z]{2}$') return 'FR';
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 8)).slice(0, schema.maxLength ?? 8);
    default:
      return 'x';
  }
}

async function call(client: HttpClient, op: Operation, values: Record<string, string>): Promise<HttpResponse> {
  const url = op.path.replace(/\{(\w+)\}/g, (_, p: string) => encodeURIComponent(values[p]!));
  const query = op.query.map((q) => `${q.name}=${encodeURIComponent(String(sample(q.schema, false)))}`).join('&');
  const target = query ? `${url}?${query}` : url;
  if (!op.body) return client.request(op.method, target);
  // Required fields first; if the body is refused as invalid, try again with every field.
  const first = await client.request(op.method, target, { body: sample(op.body, false) });
  return first.status === 400 ? client.request(op.method, target, { body: sample(op.body, true) }) : first;
}

describe('API isolation between customers', () => {
  it('[TEN-1] a member of customer X gets 404 for every id of customer Y', async () => {
    const spec = (await x.http.get('/api/openapi.json')).body;
    const ops = operationsWithIds(spec);
    // The document must list the routes this promise is about, or the test would prove nothing.
    const listed = ops.map((o) => `${o.method} ${o.path}`);
    expect(listed).toContain('GET /api/v1/tenants/{id}');
    expect(listed).toContain('GET /api/v1/tenants/{id}/transitions');

    const failures: string[] = [];
    let checked = 0;
    for (const op of ops) {
      for (const values of assignments(op)) {
        const res = await call(x.http, op, values);
        checked++;
        if (res.status !== 404 || res.body?.code === 'route_not_found') {
          failures.push(`${op.method} ${op.path} ${JSON.stringify(values)} → ${res.status} ${res.body?.code ?? ''}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThanOrEqual(ops.length);

    // And nothing of Y changed.
    const yTenant = await y.http.get(`/api/v1/tenants/${yIds.tenant}`);
    expect(yTenant.body).toMatchObject({ state: 'trial', name: 'Y workspace' });
    const roles = await ctx.core.db.selectFrom('memberships').select(['user_id', 'role']).where('customer_id', '=', y.customerId).orderBy('role').execute();
    expect(roles).toEqual([
      { user_id: yCollaborator.userId, role: 'collaborator' },
      { user_id: y.userId, role: 'owner' },
    ]);
    const invitation = await ctx.core.db.selectFrom('invitations').select('revoked_at').where('id', '=', yIds.invitation).executeTakeFirstOrThrow();
    expect(invitation.revoked_at).toBeNull();
  });

  it('[TEN-1] tenant ids that are malformed or unknown get the same 404 as another customer’s', async () => {
    for (const id of ['not-a-uuid', '00000000-0000-4000-8000-000000000000', yIds.tenant, `${yIds.tenant}x`]) {
      for (const suffix of ['', '/transitions']) {
        const res = await x.http.get(`/api/v1/tenants/${encodeURIComponent(id)}${suffix}`);
        expect(res.status, `${id}${suffix}`).toBe(404);
        expect(res.body.code).toBe('tenant_not_found');
      }
    }
    const list = await x.http.get('/api/v1/tenants');
    expect(list.body.tenants.map((t: any) => t.name)).toEqual(['X workspace']);
  });
});
