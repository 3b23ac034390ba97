import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../test/context.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

describe('HTTP server', () => {
  it('[OPS-2] answers liveness, readiness and Prometheus metrics', async () => {
    const http = ctx.client();
    expect((await http.get('/healthz')).body).toEqual({ status: 'ok' });
    const ready = await http.get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks.database).toBe(true);
    const metrics = await http.get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('havre_http_requests_total');
    expect(metrics.body).toContain('route="/readyz"');
  });

  it('[OPS-2] tags every answer with a request id, taken from X-Request-Id when valid', async () => {
    const http = ctx.client();
    const res = await http.request('GET', '/healthz', { headers: { 'x-request-id': 'abcdef12-trace' } });
    expect(res.headers.get('x-request-id')).toBe('abcdef12-trace');
    const other = await http.get('/healthz');
    expect(other.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves the OpenAPI document, Swagger UI and a bilingual landing page', async () => {
    const http = ctx.client();
    const spec = await http.get('/api/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toBe('3.1.0');
    const docs = await http.get('/api/docs/');
    expect(docs.status).toBe(200);
    const fr = await http.request('GET', '/', { headers: { 'accept-language': 'fr-FR,fr;q=0.9' } });
    expect(fr.body).toContain('lang="fr"');
    const en = await http.request('GET', '/', { headers: { 'accept-language': 'en-GB' } });
    expect(en.body).toContain('lang="en"');
  });

  it('answers unknown routes with problem+json and a stable code', async () => {
    const res = await ctx.client().get('/api/v1/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body.code).toBe('route_not_found');
  });

  it('reports not ready when the control-plane database is gone', async () => {
    // A second app whose database URL points nowhere: readiness must say so, liveness must not.
    const { createApp, createCore } = await import('../app.ts');
    const { loadConfig } = await import('../config/config.ts');
    const config = loadConfig({}, { env: 'test', home: ctx.core.config.home, databaseUrl: 'postgres://nobody:x@127.0.0.1:1/none', masterKey: ctx.core.config.masterKey, log: { level: 'silent' } });
    const app = await createApp(createCore(config));
    const ready = await app.http.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.database).toBe(false);
    await app.close();
  });
});
