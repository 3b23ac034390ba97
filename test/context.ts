/**
 * Per-test-file context: a control-plane database cloned from the migrated template, a Havre app
 * built on it (the real composition root) and listening on a real port, and an HTTP client that
 * keeps its session cookie and CSRF token like a browser would.
 */
import { mkdtemp } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import { createApp, createCore, type App, type Core } from '../src/app.ts';
import { loadConfig, type ConfigInput } from '../src/config/config.ts';
import { fixedClock, type Clock } from '../src/lib/clock.ts';

export interface TestContext {
  app: App;
  core: Core;
  baseUrl: string;
  /** The fr and de database servers started by the harness (superuser URLs). */
  regionServers: { region: string; adminUrl: string }[];
  clock: ReturnType<typeof fixedClock>;
  client(): HttpClient;
  close(): Promise<void>;
}

export interface HttpResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface HttpClient {
  /** Sends a request; JSON bodies are encoded; the session cookie and CSRF token are reused. */
  request<T = any>(method: string, url: string, options?: { body?: unknown; rawBody?: string; headers?: Record<string, string>; token?: string }): Promise<HttpResponse<T>>;
  get<T = any>(url: string, options?: { token?: string }): Promise<HttpResponse<T>>;
  post<T = any>(url: string, body?: unknown, options?: { token?: string }): Promise<HttpResponse<T>>;
  patch<T = any>(url: string, body?: unknown, options?: { token?: string }): Promise<HttpResponse<T>>;
  delete<T = any>(url: string, options?: { token?: string }): Promise<HttpResponse<T>>;
  /** Forget the CSRF token (to test that writes without it are refused). */
  dropCsrf(): void;
  cookie: string | null;
  csrfToken: string | null;
}

async function cloneDatabase(adminUrl: string, template: string): Promise<string> {
  const name = `t_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await client.end();
  }
  return name;
}

async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}

export function makeClient(baseUrl: string): HttpClient {
  const c: HttpClient = {
    cookie: null,
    csrfToken: null,
    async request(method, url, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      let body: string | undefined;
      if (options.rawBody !== undefined) body = options.rawBody;
      else if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      else if (c.cookie) {
        headers.cookie = c.cookie;
        if (c.csrfToken && !['GET', 'HEAD'].includes(method)) headers['x-csrf-token'] = c.csrfToken;
      }
      const res = await fetch(baseUrl + url, { method, headers, body, redirect: 'manual' });
      const setCookie = res.headers.getSetCookie();
      for (const sc of setCookie) {
        const [pair] = sc.split(';');
        if (pair?.startsWith('havre_session=')) c.cookie = /havre_session=;|Expires=Thu, 01 Jan 1970/i.test(sc) ? null : pair;
      }
      const text = await res.text();
      let parsed: unknown = text;
      if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && typeof (parsed as { csrfToken?: unknown }).csrfToken === 'string') {
        c.csrfToken = (parsed as { csrfToken: string }).csrfToken;
      }
      return { status: res.status, headers: res.headers, body: parsed as any };
    },
    get: (url, o) => c.request('GET', url, o),
    post: (url, body, o) => c.request('POST', url, { ...o, body }),
    patch: (url, body, o) => c.request('PATCH', url, { ...o, body }),
    delete: (url, o) => c.request('DELETE', url, o),
    dropCsrf() {
      c.csrfToken = null;
    },
  };
  return c;
}

export async function createTestContext(options: { now?: Date; config?: ConfigInput | Record<string, unknown>; clock?: Clock } = {}): Promise<TestContext> {
  const adminUrl = inject('controlAdminUrl');
  const database = await cloneDatabase(adminUrl, inject('templateDatabase'));
  const databaseUrl = adminUrl.replace(/\/[^/]*$/, `/${database}`);
  const home = await mkdtemp(path.join(inject('testRoot'), 'home-'));
  const config = loadConfig(
    {},
    {
      env: 'test',
      home,
      databaseUrl,
      masterKey: randomBytes(32).toString('base64'),
      log: { level: 'silent' },
      ...options.config,
    },
  );
  const clock = fixedClock(options.now ?? new Date('2026-11-23T09:00:00Z'));
  const core = createCore(config, { clock: options.clock ?? clock });
  const app = await createApp(core);
  await app.http.listen({ port: 0, host: '127.0.0.1' });
  const address = app.http.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    app,
    core,
    baseUrl,
    regionServers: inject('regionServers'),
    clock,
    client: () => makeClient(baseUrl),
    async close() {
      await app.close();
      await dropDatabase(adminUrl, database);
    },
  };
}
