/**
 * Havre's configuration: one zod schema over an optional JSON file and the environment,
 * parsed once at start, frozen, and passed down. Nothing else in `src/` reads `process.env`.
 *
 * Why one schema: the published policy texts (OPS-3) and the behaviour must read the same values,
 * and a bad setting must stop the process at start with a clear message, not fail at 3 a.m.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { retentionSchema } from './retention-rules.ts';
import { billingSchema, billingPlaceholderIssues } from './billing-config.ts';
import { paymentsSchema } from './payments-config.ts';

const region = z.string().regex(/^[a-z]{2}$/, 'a region is a two-letter lowercase code, e.g. "fr"');

const configSchema = z
  .object({
    env: z.enum(['development', 'production', 'test']).default('development'),
    home: z.string().min(1),
    http: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.coerce.number().int().min(0).max(65535).default(8080),
        publicUrl: z.url().optional(),
        /**
         * Which proxies' X-Forwarded-For/-Proto to believe (Fastify `trustProxy`): false (none),
         * true (any — only when nothing can reach Havre except through the proxy), a number of
         * hops, or a comma-separated list of addresses/CIDR ranges. Behind a load balancer this
         * must be set, or every client shares the balancer's address (sign-in limits, audit IPs).
         */
        trustProxy: z
          .union([z.boolean(), z.number().int().min(1).max(10), z.string().regex(/^[0-9a-fA-F.:/, ]+$/, 'a comma-separated list of IP addresses or CIDR ranges')])
          .default(false),
        bodyLimitBytes: z.number().int().positive().default(1_048_576),
      })
      .strict()
      .prefault({}),
    /** Control-plane database. Absent: Havre starts embedded PostgreSQL under `home`. */
    databaseUrl: z.string().optional(),
    embedded: z
      .object({
        basePort: z.number().int().min(1024).max(65000).default(54330),
        regions: z.array(region).min(1).default(['fr', 'de']),
      })
      .strict()
      .prefault({}),
    /** 32 random bytes, base64. Encrypts secrets at rest (SEC-3). */
    masterKey: z.string().optional(),
    tenants: z
      .object({
        regions: z.array(region).min(1).default(['fr', 'de']),
        defaultRegion: region.default('fr'),
        warmPoolSize: z.number().int().min(0).max(100).default(3),
        roleConnectionLimit: z.number().int().min(1).max(100).default(10),
        trialDays: z.number().int().min(1).max(90).default(14),
        connections: z
          .object({
            perTenantMax: z.number().int().min(1).max(20).default(3),
            globalMax: z.number().int().min(1).max(10_000).default(60),
            idleMs: z.number().int().min(100).default(30_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    workspace: z
      .object({
        attachments: z
          .object({
            /** Largest attachment accepted, in bytes (default 100 MB); a bigger upload is cut off with 413. */
            maxBytes: z.number().int().min(1024).max(10 * 1024 ** 3).default(100 * 1024 ** 2),
          })
          .strict()
          .prefault({}),
        rollout: z
          .object({
            /** Tenants taken per batch; a batch is finished before the next starts (progress is saved per tenant). */
            batchSize: z.number().int().min(1).max(1000).default(20),
            /** Tenants upgraded at once inside a batch. */
            concurrency: z.number().int().min(1).max(64).default(4),
            /** Tries per tenant before it is reported as failed (it stays on its old version). */
            maxAttempts: z.number().int().min(1).max(10).default(3),
            /** lock_timeout of an upgrade: a tenant busy with long transactions fails fast and is retried. */
            lockTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
            /** Hours between the maintenance notice and the first upgrade of a release that interrupts service. */
            maintenanceNoticeHours: z.number().int().min(0).max(24 * 30).default(72),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Backups (BKP-1..7): where copies go, when they run, how long objects stay locked. */
    backups: z
      .object({
        /**
         * At least two locations, each a separate country (BKP-3), never a tenant database server.
         * `fs`: a directory (default `<home>/backups/<name>`); `s3`: a bucket with Object Lock.
         */
        locations: z
          .array(
            z.discriminatedUnion('driver', [
              z.object({ name: z.string().regex(/^[a-z0-9-]{1,40}$/), driver: z.literal('fs'), root: z.string().min(1).optional() }).strict(),
              z
                .object({
                  name: z.string().regex(/^[a-z0-9-]{1,40}$/),
                  driver: z.literal('s3'),
                  bucket: z.string().min(3).max(63),
                  region: z.string().min(1),
                  prefix: z.string().regex(/^([A-Za-z0-9][A-Za-z0-9._-]*\/)*$/, 'a prefix is empty or ends with "/"').optional(),
                  endpoint: z.url().optional(),
                  forcePathStyle: z.boolean().optional(),
                  accessKeyId: z.string().optional(),
                  secretAccessKey: z.string().optional(),
                })
                .strict(),
            ]),
          )
          .min(2, 'at least two backup locations (BKP-3)')
          .default([
            { name: 'fr', driver: 'fs' },
            { name: 'de', driver: 'fs' },
          ]),
        /** Scheduled backups start in this window (Paris time), each tenant at its own minute, spread. */
        windowStartHour: z.number().int().min(0).max(23).default(0),
        windowHours: z.number().int().min(1).max(24).default(24),
        /** Backups a customer may ask for per tenant per Paris day, on top of the scheduled one. */
        onDemandPerDay: z.number().int().min(0).max(100).default(5),
        /** Backups (and verifications) one node runs at once. */
        concurrency: z.number().int().min(1).max(16).default(2),
        /** A stored backup stays locked at least this long (and longer while retention keeps it). */
        minLockDays: z.number().int().min(1).max(366).default(7),
        /** pg_dump compression level (0-9) of the database part. */
        compression: z.number().int().min(0).max(9).default(1),
        /** How long a download link works. */
        downloadLinkMinutes: z.number().int().min(1).max(24 * 60).default(15),
        /** How often a node looks for due backups, verifications and retention (ms). */
        tickMs: z.number().int().min(1000).default(60_000),
      })
      .strict()
      .prefault({}),
    /** Deletion lifecycle (TEN-4, TEN-5, BKP-7): grace period of a cancelled tenant, purge of its backups. */
    deletion: z
      .object({
        /** Days a cancelled tenant can still be exported and reactivated before it is destroyed. */
        graceDays: z.number().int().min(0).max(365).default(28),
        /** Backups of a destroyed tenant are unreadable (key shredded) at most this many months after destruction. */
        backupRetentionMonths: z.number().int().min(0).max(12).default(12),
        /** How often a node looks for due destructions and purges (ms). */
        tickMs: z.number().int().min(1000).default(60_000),
      })
      .strict()
      .prefault({}),
    /** Where files live (attachments, each tenant under its own area). Default: `<home>/storage`. */
    storage: z
      .object({ root: z.string().min(1).optional() })
      .strict()
      .prefault({}),
    /** Exports and imports of whole tenants (EXP-1..3). Archives are built under `<home>/exports`. */
    portability: z
      .object({
        /** How long a download link of an export works. */
        downloadLinkMinutes: z.number().int().min(1).max(24 * 60).default(15),
        /** How long a complete export's archive is kept before it is deleted. */
        keepHours: z.number().int().min(1).max(24 * 30).default(72),
        /** Largest import body (an export archive or a CSV file) accepted, in bytes (default 10 GB). */
        importMaxBytes: z.number().int().min(1024).max(1024 ** 4).default(10 * 1024 ** 3),
      })
      .strict()
      .prefault({}),
    /** Billing (BIL-1..12): the seller printed on invoices, the plan table, numbering and payment terms. See billingSchema. */
    billing: billingSchema,
    /** Payments and dunning (BIL-10, BIL-11): provider keys and the reminder/suspension timeline. See paymentsSchema. */
    payments: paymentsSchema,
    auth: z
      .object({
        sessionTtlHours: z.number().int().min(1).max(24 * 90).default(24 * 14),
        verificationTtlHours: z.number().int().min(1).default(48),
        resetTtlMinutes: z.number().int().min(5).default(60),
        invitationTtlDays: z.number().int().min(1).default(7),
        /**
         * How long this node may reuse a resolved session/token and a tenant's access facts (ms).
         * Changes made on this node apply at once; changes made elsewhere within this delay. 0: no cache.
         */
        cacheMs: z.number().int().min(0).max(60_000).default(2_000),
        signIn: z
          .object({
            maxFailuresPerAccount: z.number().int().min(1).default(5),
            maxFailuresPerIp: z.number().int().min(1).default(30),
            windowMinutes: z.number().int().min(1).default(15),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    mail: z
      .object({
        from: z.string().default('Havre <no-reply@havre.localhost>'),
        /** e.g. smtp://user:pass@host:587 ; absent: the local outbox in the database. */
        smtpUrl: z.string().optional(),
      })
      .strict()
      .prefault({}),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .prefault({}),
    /** PRV-4: retention rules (one place; defaults from PROMISES.md) and the daily job's batch size. See retention-rules.ts. */
    retention: retentionSchema,
    /**
     * Marks this installation's data as disposable (a test or demo copy): only then (or with
     * `env: "test"`) may `havre retention run --as-of` move time and delete for real. Set it in
     * `havre.json` of the copy, never in production (refused there).
     */
    disposable: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.tenants.regions.includes(c.tenants.defaultRegion)) {
      ctx.addIssue({ code: 'custom', path: ['tenants', 'defaultRegion'], message: 'must be one of tenants.regions' });
    }
    const names = c.backups.locations.map((l) => l.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['backups', 'locations'], message: 'location names must be distinct' });
    if (c.env === 'production') {
      if (c.disposable) ctx.addIssue({ code: 'custom', path: ['disposable'], message: 'a production installation is never disposable' });
      if (!c.databaseUrl) ctx.addIssue({ code: 'custom', path: ['databaseUrl'], message: 'HAVRE_DATABASE_URL is required in production' });
      if (!c.masterKey) ctx.addIssue({ code: 'custom', path: ['masterKey'], message: 'HAVRE_MASTER_KEY is required in production' });
      for (const issue of billingPlaceholderIssues(c.billing)) ctx.addIssue({ code: 'custom', path: ['billing', ...issue.path], message: issue.message });
    }
    if (c.masterKey !== undefined) {
      const bytes = Buffer.from(c.masterKey, 'base64');
      if (bytes.length !== 32) ctx.addIssue({ code: 'custom', path: ['masterKey'], message: 'must be 32 bytes, base64-encoded' });
      else if (new Set(bytes).size < 8) ctx.addIssue({ code: 'custom', path: ['masterKey'], message: 'looks like a placeholder; generate one with `openssl rand -base64 32`' });
    }
  });

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

/** A configuration error: printed as is, and the process stops before doing anything. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function fromEnv(env: Env): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const set = (keys: string[], value: unknown) => {
    if (value === undefined || value === '') return;
    let node = out;
    for (const k of keys.slice(0, -1)) node = (node[k] ??= {}) as Record<string, unknown>;
    node[keys[keys.length - 1]!] = value;
  };
  set(['env'], env.HAVRE_ENV);
  set(['http', 'host'], env.HAVRE_HOST);
  set(['http', 'port'], env.HAVRE_PORT ?? env.PORT);
  set(['http', 'publicUrl'], env.HAVRE_PUBLIC_URL);
  set(['http', 'trustProxy'], parseTrustProxy(env.HAVRE_TRUST_PROXY));
  set(['databaseUrl'], env.HAVRE_DATABASE_URL);
  set(['masterKey'], env.HAVRE_MASTER_KEY);
  set(['mail', 'smtpUrl'], env.HAVRE_SMTP_URL);
  set(['mail', 'from'], env.HAVRE_MAIL_FROM);
  set(['log', 'level'], env.HAVRE_LOG_LEVEL);
  return out;
}

function parseTrustProxy(value: string | undefined): boolean | number | string | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === 'false') return value === 'true';
  if (/^\d+$/.test(value)) return Number(value);
  return value;
}

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * Parses the configuration from `$HAVRE_HOME/havre.json` (if present), then the environment, then
 * `overrides` (tests and the CLI use these). Throws a ConfigError listing every problem at once.
 */
export function loadConfig(env: Env, overrides: ConfigInput | Record<string, unknown> = {}): Config {
  const home = path.resolve((overrides as { home?: string }).home ?? env.HAVRE_HOME ?? '.havre');
  const file = path.join(home, 'havre.json');
  let fileValues: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      fileValues = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`${file} is not valid JSON: ${(err as Error).message}`);
    }
  }
  const raw = merge(merge(merge({ home }, fileValues), fromEnv(env)), overrides as Record<string, unknown>);
  raw.home = home;
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`Invalid Havre configuration:\n${lines.join('\n')}`);
  }
  return deepFreeze(parsed.data);
}

/** The root directory of local file storage: `storage.root`, else `<home>/storage`. */
export function storageRoot(config: Config): string {
  return path.resolve(config.storage.root ?? path.join(config.home, 'storage'));
}

/** The directory of a filesystem backup location: its `root`, else `<home>/backups/<name>`. */
export function backupLocationRoot(config: Config, location: { name: string; root?: string | undefined }): string {
  return path.resolve(location.root ?? path.join(config.home, 'backups', location.name));
}

/** The base URL of links in e-mails: `http.publicUrl`, else this node's own address. */
export function publicBaseUrl(config: Config): string {
  if (config.http.publicUrl) return config.http.publicUrl.replace(/\/+$/, '');
  const host = ['0.0.0.0', '127.0.0.1', '::'].includes(config.http.host) ? 'localhost' : config.http.host;
  return `http://${host}:${config.http.port}`;
}

/**
 * The PATH on which child tools (pg_dump, pg_restore) are looked up: the one Havre was started
 * with. A machine fact rather than a setting, read here because this is the one reader of the
 * environment.
 */
export function toolSearchPath(): string | undefined {
  return process.env.PATH;
}
