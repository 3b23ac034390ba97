/**
 * Assembles the Fastify server: zod validation and serialisation, OpenAPI + Swagger UI, cookies,
 * authentication, the error mapping, metrics, health endpoints and the landing page. Modules add
 * their routes as plugins; this file knows nothing of any domain.
 */
import type http from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify';
import fastifyCookie from '@fastify/cookie';
import fastifyFormbody from '@fastify/formbody';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config/config.ts';
import type { Db } from '../db/db.ts';
import type { Clock } from '../lib/clock.ts';
import { AppError } from '../lib/errors.ts';
import { installAuth } from './auth.ts';
import type { AuthCache } from './auth-cache.ts';
import { installErrorHandler } from './error-handler.ts';
import { registerHealthRoutes } from './health-routes.ts';
import { registerLandingPage } from './landing.ts';
import { instrumentHttp, type Metrics } from './metrics.ts';

/**
 * A route module registers its routes on an encapsulated Fastify instance; it calls
 * `app.withTypeProvider<ZodTypeProvider>()` to get request types from its zod schemas.
 */
export type RoutePlugin = (app: FastifyInstance) => void | Promise<void>;
export type { ZodTypeProvider };

export interface ServerDeps {
  config: Config;
  db: Db;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  authCache: AuthCache;
  readiness: () => Promise<Record<string, boolean>>;
  /** Told when a request about a tenant (`/api/v1/tenants/:id…`) starts; returns its end (CPU attribution, MET-1). */
  tenantActivity?: (tenantId: string) => () => void;
}

/** True when a string anywhere in `value` (objects and arrays included, 32 levels deep) contains U+0000. */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes('\u0000');
  if (depth > 32 || value === null || typeof value !== 'object') return false;
  for (const [k, v] of Object.entries(value)) if (k.includes('\u0000') || containsNul(v, depth + 1)) return true;
  return false;
}

/** Fastify's `trustProxy`; a hop count becomes "trust the nearest N proxies". */
function trustProxyOption(value: boolean | number | string): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof value === 'number' ? (_address, hop) => hop < value : value;
}

export async function buildServer(deps: ServerDeps, routes: RoutePlugin[]): Promise<FastifyInstance> {
  // Typed as the HTTP/1 options object so that a union-typed `trustProxy` picks Fastify's HTTP/1 overload.
  const options: FastifyHttpOptions<http.Server, FastifyBaseLogger> = {
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.http.bodyLimitBytes,
    trustProxy: trustProxyOption(deps.config.http.trustProxy),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w-]{8,64}$/.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false } },
  };
  const app: FastifyInstance = Fastify(options);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app);
  await app.register(fastifyCookie);
  // Only for the plain HTML forms behind e-mailed links; the API takes JSON and refuses forms, so
  // a cross-site HTML form can never reach an API route.
  await app.register(fastifyFormbody, { bodyLimit: 16_384 });
  app.addHook('onRequest', async (request) => {
    // Media types are case-insensitive (browsers send any case as a CORS-safe type).
    const type = (request.headers['content-type'] ?? '').trim().toLowerCase();
    if (type.startsWith('application/x-www-form-urlencoded') && !request.routeOptions.config.publicForm) {
      throw new AppError(415, 'unsupported_media_type', 'Send JSON (content-type: application/json).');
    }
  });

  // SEC-2: in production (or behind an https public URL) browsers must only ever use HTTPS.
  const httpsOnly = deps.config.env === 'production' || (deps.config.http.publicUrl ?? '').startsWith('https:');
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (httpsOnly || request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000; includeSubDomains');
    // API answers are data, never documents: nothing may load or frame them. Pages set their own.
    if (!reply.hasHeader('content-security-policy') && !request.url.startsWith('/api/docs')) {
      reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
    }
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Havre API', version: '1', description: 'Accounts, tenants and operations of a Havre platform. Errors are application/problem+json with a stable `code`.' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'API token (hvr_…) from POST /api/v1/tokens' },
          session: { type: 'apiKey', in: 'cookie', name: 'havre_session', description: 'Session cookie from POST /api/v1/sessions; writes need X-CSRF-Token' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs' });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // PostgreSQL text cannot hold NUL characters; no route should ever turn one into a 500.
  app.addHook('preValidation', async (request) => {
    for (const [where, value] of [['body', request.body], ['querystring', request.query], ['params', request.params]] as const) {
      if (containsNul(value)) throw new AppError(400, 'invalid_request', `NUL characters are not allowed (in the ${where}).`);
    }
  });

  instrumentHttp(app, deps.metrics);
  if (deps.tenantActivity) {
    const begin = deps.tenantActivity;
    const ends = new WeakMap<object, () => void>();
    const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    app.addHook('onRequest', async (request) => {
      if (!request.routeOptions.url?.startsWith('/api/v1/tenants/:id')) return;
      const id = (request.params as { id?: string }).id;
      if (id && TENANT_ID.test(id)) ends.set(request, begin(id.toLowerCase()));
    });
    const end = async (request: object) => {
      ends.get(request)?.();
      ends.delete(request);
    };
    app.addHook('onResponse', end);
    app.addHook('onRequestAbort', end);
  }
  installAuth(app, { db: deps.db, clock: deps.clock, cache: deps.authCache.principals });
  registerHealthRoutes(app, deps);
  registerLandingPage(app);
  for (const register of routes) await app.register(async (scoped) => register(scoped));
  return app;
}
