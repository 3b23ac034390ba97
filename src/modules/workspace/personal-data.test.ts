/**
 * APP-4: no field for special-category data anywhere, and every column of the workspace declared
 * with its personal-data category in one place.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { registerServers } from '../../../test/factories.ts';
import { personalColumns, SPECIAL_CATEGORY_PATTERN, WORKSPACE_COLUMNS } from './personal-data.ts';
import { createWorkspace, tenantQuery, type Workspace } from './workspace-fixtures.ts';

let ctx: TestContext;
let ws: Workspace;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  ws = await createWorkspace(ctx);
});
afterAll(async () => ctx?.close());

describe('personal data in the workspace', () => {
  it('[APP-4] every column of a migrated tenant database is declared, and every declared column exists', async () => {
    const rows = await tenantQuery<{ table_name: string; column_name: string }>(
      ctx,
      ws,
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    );
    const actual = rows.map((r) => `${r.table_name}.${r.column_name}`).sort();
    const declared = Object.entries(WORKSPACE_COLUMNS)
      .flatMap(([table, columns]) => Object.keys(columns).map((c) => `${table}.${c}`))
      .sort();
    expect(actual).toEqual(declared);
    // Contacts and employees hold personal data, and it is declared as such.
    expect(personalColumns().filter((c) => c.table === 'contacts').map((c) => c.column)).toEqual(['title', 'first_name', 'last_name', 'email', 'phone', 'fax', 'position']);
  });

  it('[APP-4] no table, column or API field is meant for special-category data', async () => {
    const names = await tenantQuery<{ name: string }>(
      ctx,
      ws,
      "SELECT table_name || '.' || column_name AS name FROM information_schema.columns WHERE table_schema = 'public'",
    );
    expect(names.map((n) => n.name).filter((n) => SPECIAL_CATEGORY_PATTERN.test(n))).toEqual([]);

    const spec = (await ws.owner.http.get('/api/openapi.json')).body;
    const fields = new Set<string>();
    const walk = (schema: any) => {
      if (!schema || typeof schema !== 'object') return;
      for (const [k, v] of Object.entries<any>(schema.properties ?? {})) {
        fields.add(k);
        walk(v);
      }
      for (const key of ['items', 'anyOf', 'oneOf', 'allOf']) [schema[key]].flat().forEach(walk);
    };
    for (const [p, item] of Object.entries<any>(spec.paths)) {
      if (!p.startsWith('/api/v1/tenants/{id}/')) continue;
      for (const op of Object.values<any>(item)) {
        walk(op.requestBody?.content?.['application/json']?.schema);
        for (const response of Object.values<any>(op.responses ?? {})) walk(response.content?.['application/json']?.schema);
        for (const param of op.parameters ?? []) fields.add(param.name);
      }
    }
    expect(fields.size).toBeGreaterThan(30);
    expect([...fields].filter((f) => SPECIAL_CATEGORY_PATTERN.test(f))).toEqual([]);
  });

  it('[APP-4] a special-category field sent to the API is refused with 400, and nothing is stored', async () => {
    for (const field of ['religion', 'healthNotes', 'ethnicOrigin', 'politicalOpinion', 'tradeUnion', 'sexualOrientation']) {
      const res = await ws.owner.http.post(`${ws.base}/contacts`, { lastName: 'Test', [field]: 'x' });
      expect(res.status, field).toBe(400);
    }
    expect(await tenantQuery(ctx, ws, 'SELECT count(*)::int AS n FROM contacts')).toEqual([{ n: 0 }]);
  });
});
