/**
 * The shared core every module is built from (database, clock, secrets, logger, metrics, audit,
 * mailer…). It lives apart from `app.ts` so that a CLI command can build the core and the few
 * modules it uses without loading the HTTP server (Fastify, Swagger) or the other modules.
 */
import pino, { type Logger } from 'pino';
import type { Config } from './config/config.ts';
import { createDb, type Db } from './db/db.ts';
import { systemClock, type Clock } from './lib/clock.ts';
import { createSecretBox, type SecretBox } from './lib/crypto.ts';
import type { RoutePlugin } from './http/server.ts';
import { createMetrics, type Metrics } from './http/metrics.ts';
import { createAuthCache, type AuthCache } from './http/auth-cache.ts';
import { createAuditService, type AuditService } from './modules/audit/audit-service.ts';
import { createMailer, type Mailer } from './modules/mail/mail-service.ts';
import { createCpuAttribution, type CpuAttribution } from './modules/metering/cpu-attribution.ts';

/** What every module may depend on. Modules take the parts they need, not the whole core. */
export interface Core {
  config: Config;
  db: Db;
  clock: Clock;
  secrets: SecretBox;
  logger: Logger;
  metrics: Metrics;
  audit: AuditService;
  mailer: Mailer;
  /** Hot-path authorization facts of this node (src/http/auth-cache.ts). */
  authCache: AuthCache;
  /** Which tenants this node is working for, to share its CPU among them (MET-1, metering/cpu-attribution.ts). */
  activity: CpuAttribution;
}

/**
 * The contract of a domain module: its HTTP routes, and optionally background work that a node
 * runs (`start` returns its stopper) and readiness checks.
 */
export interface HavreModule {
  routes: RoutePlugin;
  start?(): () => Promise<void>;
  readiness?(): Promise<Record<string, boolean>>;
}

/**
 * Routes whose code is imported when the server registers them. A module's services are what a CLI
 * command uses; its routes (zod schemas, Fastify's type provider, presenters) only serve HTTP.
 */
export function lazyRoutes(load: () => Promise<RoutePlugin>): RoutePlugin {
  return async (app) => (await load())(app);
}

/** The process logger; request logs carry the route pattern only, and credentials are redacted. */
export function createLogger(config: Config): Logger {
  return pino({
    level: config.log.level,
    redact: { paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.token', '*.masterKey'], censor: '[redacted]' },
    serializers: {
      // The route pattern only: raw URLs may carry one-time tokens.
      req: (req: { method: string; routeOptions?: { url?: string }; id: string }) => ({ method: req.method, route: req.routeOptions?.url ?? 'unmatched', id: req.id }),
    },
  });
}

/** Builds the core from the configuration; `options` lets tests share a database or move the clock. */
export function createCore(config: Config, options: { db?: Db; clock?: Clock; logger?: Logger } = {}): Core {
  if (!config.databaseUrl && !options.db) throw new Error('createCore needs config.databaseUrl (or an embedded database started by `havre start`)');
  if (!config.masterKey) throw new Error('createCore needs config.masterKey');
  const db = options.db ?? createDb(config.databaseUrl!);
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config);
  return {
    config,
    db,
    clock,
    secrets: createSecretBox(config.masterKey),
    logger,
    metrics: createMetrics(),
    audit: createAuditService({ db, clock }),
    authCache: createAuthCache({ ttlMs: config.auth.cacheMs }),
    activity: createCpuAttribution(performance.now()),
    mailer: createMailer({ db, clock, from: config.mail.from, smtpUrl: config.mail.smtpUrl, onError: (err) => logger.warn({ err }, 'mail delivery failed') }),
  };
}
