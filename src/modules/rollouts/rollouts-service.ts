/**
 * The rollout engine (TEN-6): brings every tenant database to a target workspace schema version,
 * in batches, a few at a time, each tenant on its own.
 *
 * - **Creation** (one control-plane transaction): the release row (SEC-5 clock, security flag),
 *   the rollout, one item per live tenant database below the target (warm-pool databases
 *   included), the maintenance notices of tenants whose pending migrations interrupt service
 *   (queued in the outbox in that same transaction; those tenants wait `maintenanceNoticeHours`),
 *   and the audit entry. A unique index allows one running rollout per target.
 * - **Running**: items are taken `batchSize` at a time in a fixed order, `concurrency` at once.
 *   Each item is leased (compare-and-set, renewed while it runs), so two workers — on one node or
 *   many — never run one item at once, and the items of a killed worker are taken again once its
 *   lease ends. Per item: `beforeUpgrade` (the backup goes there) → `upgrade` (one locked
 *   transaction inside the tenant database: a tenant already upgraded by an earlier, killed run is
 *   found at its version and nothing is applied twice) → done. A failure is retried with back-off,
 *   up to `maxAttempts`, then reported `failed`; the tenant stays intact on its old version, and
 *   the others go on.
 * - **Finishing**: when no item is pending or running, the rollout becomes `succeeded` (or
 *   `failed` when a tenant failed) and the audit log says so — once, whichever worker gets there.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.ts';
import type { Db, Executor } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { AppError, badRequest, conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { parisDate } from '../../lib/paris-date.ts';
import type { AuditActorType } from '../audit/audit-tables.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { Mailer } from '../mail/mail-service.ts';
import type { TenantMigration, UpgradeResult } from '../workspace/tenant-schema.ts';
import { maintenanceNoticeMail } from './rollouts-mails.ts';
import type { EligibleDatabase, ItemCounts, ItemRow, ItemWithTenant, ReleaseRow, RolloutRow, RolloutsRepo } from './rollouts-repo.ts';
import { deferralInForce } from './rollouts-security.ts';
import type { RolloutItemsTable } from './rollouts-tables.ts';

export type RolloutSettings = Config['workspace']['rollout'];

export interface RolloutActor {
  type: AuditActorType;
  id?: string | null;
  ip?: string | null;
}

export interface RolloutDeps {
  db: Db;
  repo: RolloutsRepo;
  clock: Clock;
  audit: AuditService;
  mailer: Mailer;
  logger: Logger;
  settings: RolloutSettings;
  /** The workspace schema this Havre ships (tests pass their own). */
  migrations: readonly TenantMigration[];
  /** Upgrades one tenant database (the workspace module's `upgrade`). */
  upgrade(tenantDatabaseId: string, options: { target: number; migrations: readonly TenantMigration[]; lockTimeoutMs: number }): Promise<UpgradeResult>;
  /**
   * TEN-6: runs just before each tenant's upgrade — this is where the backup of the tenant is
   * taken (wired by the backups module). A throw counts as a failed attempt: no update without
   * its backup. Default: nothing.
   */
  beforeUpgrade?: (tenantDatabaseId: string) => Promise<void>;
  /** Waits `ms` (tests pass one that moves their clock). */
  sleep?: (ms: number) => Promise<void>;
  /** Back-off before attempt `attempts + 1` (default 2 s, doubling, at most 1 min). */
  retryDelayMs?: (attempts: number) => number;
  /** How long a worker holds an item without renewing its lease (default 60 s; renewed every third of it). */
  leaseMs?: number;
  /** This worker's name in leases (default host:pid:random). */
  workerId?: string;
}

export interface CreateRolloutInput {
  /** Default: the latest version shipped. */
  target?: number;
  batchSize?: number;
  concurrency?: number;
  /** Marks the release as a security fix (SEC-5); never unmarks it. */
  security?: boolean;
  /** The release date of the fix (SEC-5 clock), when it predates this first rollout. */
  releasedAt?: Date;
  actor: RolloutActor;
}

export interface CreateResult {
  release: ReleaseRow;
  /** The new rollout, the one already running for the target, or null when no tenant is below it. */
  rollout: RolloutRow | null;
  created: boolean;
}

export interface RolloutProgress {
  rolloutId: string;
  targetVersion: number;
  /** Batches run by this call so far. */
  batch: number;
  counts: ItemCounts;
}

export interface RunOptions {
  batchSize?: number;
  concurrency?: number;
  onProgress?: (progress: RolloutProgress) => void;
  signal?: AbortSignal;
}

export interface RunOutcome {
  rollout: RolloutRow;
  counts: ItemCounts;
  /** `finished`: nothing left; `waiting`: items wait for their notice period (until `waitingUntil`); `stopped`: asked to stop. */
  status: 'finished' | 'waiting' | 'stopped';
  waitingUntil: Date | null;
  failures: ItemWithTenant[];
}

/** Past this, a run does not wait in-process for the next takeable item (a notice period): it returns `waiting`. */
const MAX_INLINE_WAIT_MS = 10 * 60_000;
const MAX_ERROR_LENGTH = 500;

export const defaultRetryDelayMs = (attempts: number): number => Math.min(2_000 * 2 ** (attempts - 1), 60_000);

/** An error as stored on an item: the PostgreSQL code and message, credentials in URLs removed, truncated. */
export function describeFailure(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  const code = err instanceof AppError ? err.code : typeof e?.code === 'string' ? e.code : null;
  const text = (code ? `${code}: ${message}` : message).replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1[redacted]@').replace(/password\s*=\s*\S+/gi, 'password=[redacted]');
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text;
}

/**
 * Runs `task` over `items`, at most `concurrency` at once. Tenant failures are handled inside
 * `task`; an error escaping it (the control plane unreachable) stops taking new items, lets the
 * started ones finish, then is thrown (the item stays leased and is taken again after its lease).
 */
async function eachLimited<T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async () => {
    while (next < items.length && !signal?.aborted && !failure) {
      try {
        await task(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
}

function checkRange(name: string, value: number | undefined, min: number, max: number): void {
  if (value !== undefined && (!Number.isInteger(value) || value < min || value > max)) throw badRequest(`invalid_${name}`, `${name} takes a whole number from ${min} to ${max}.`);
}

export function createRolloutService(deps: RolloutDeps) {
  const { db, repo, clock, audit, mailer, logger, settings, migrations } = deps;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retryDelayMs = deps.retryDelayMs ?? defaultRetryDelayMs;
  const leaseMs = deps.leaseMs ?? 60_000;
  const workerId = deps.workerId ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  function targetOf(target: number | undefined): number {
    const version = target ?? migrations.length;
    if (!Number.isInteger(version) || version < 1 || version > migrations.length) throw badRequest('unknown_version', `No workspace schema version ${version}: this Havre ships versions 1 to ${migrations.length}.`);
    return version;
  }

  /** Items for `eligible`, with their maintenance notice period and the deferrals in force. */
  async function planItems(rollout: RolloutRow, eligible: EligibleDatabase[], security: boolean, trx: Executor) {
    const now = rollout.created_at;
    const noticeEnd = new Date(now.getTime() + settings.maintenanceNoticeHours * 3_600_000);
    const tenantIds = eligible.flatMap((d) => (d.tenant_id ? [d.tenant_id] : []));
    const today = parisDate(now);
    const deferrals = security ? new Map((await repo.deferrals(rollout.target_version, tenantIds, trx)).filter((d) => deferralInForce(d, today)).map((d) => [d.tenant_id, d])) : new Map();
    return eligible.map((d, position): RolloutItemsTable => {
      const deferral = d.tenant_id ? deferrals.get(d.tenant_id) : undefined;
      const interrupts = migrations.slice(d.schema_version, rollout.target_version).some((m) => m.interruptsService);
      // Warm-pool databases serve nobody: no notice, no wait.
      const notBefore = !deferral && interrupts && d.tenant_id ? noticeEnd : null;
      return {
        rollout_id: rollout.id,
        tenant_database_id: d.id,
        position,
        state: deferral ? 'deferred' : 'pending',
        from_version: d.schema_version,
        to_version: rollout.target_version,
        attempts: 0,
        last_error: null,
        not_before: notBefore,
        next_attempt_at: null,
        leased_until: null,
        worker_id: null,
        deferral_id: deferral?.id ?? null,
        started_at: null,
        finished_at: deferral ? now : null,
      };
    });
  }

  /** Queues one maintenance notice per owner/administrator of the customers whose tenants wait; returns how many. */
  async function queueNotices(items: RolloutItemsTable[], eligible: EligibleDatabase[], trx: Executor): Promise<number> {
    const waiting = new Set(items.filter((i) => i.not_before).map((i) => i.tenant_database_id));
    const tenantsByCustomer = new Map<string, string[]>();
    for (const d of eligible) if (waiting.has(d.id) && d.customer_id) tenantsByCustomer.set(d.customer_id, [...(tenantsByCustomer.get(d.customer_id) ?? []), d.tenant_name ?? d.id]);
    const earliestStart = items.find((i) => i.not_before)?.not_before;
    if (!earliestStart) return 0;
    // One e-mail per person, naming every workspace of theirs the update touches.
    const byUser = new Map<string, { to: Parameters<typeof maintenanceNoticeMail>[0]; tenantNames: string[] }>();
    for (const r of await repo.noticeRecipients([...tenantsByCustomer.keys()], trx)) {
      const entry = byUser.get(r.user_id) ?? { to: { email: r.email, userId: r.user_id, name: r.name, locale: r.locale }, tenantNames: [] };
      entry.tenantNames.push(...(tenantsByCustomer.get(r.customer_id) ?? []));
      byUser.set(r.user_id, entry);
    }
    for (const { to, tenantNames } of byUser.values()) await mailer.send(maintenanceNoticeMail(to, { tenantNames: tenantNames.sort(), earliestStart }), trx);
    return byUser.size;
  }

  /**
   * Records the release and creates a rollout to `target` for every live tenant database below it
   * — or returns the one already running for that target (`created: false`), or none when no
   * database is below the target. Notices and the audit entry commit with it.
   */
  async function create(input: CreateRolloutInput): Promise<CreateResult> {
    const target = targetOf(input.target);
    checkRange('batch_size', input.batchSize, 1, 1000);
    checkRange('concurrency', input.concurrency, 1, 64);
    const now = clock.now();
    if (input.releasedAt && input.releasedAt > now) throw badRequest('released_in_future', 'The release date cannot be in the future.');
    return db.transaction().execute(async (trx) => {
      const before = await repo.findRelease(target, trx);
      const release = await repo.upsertRelease({ version: target, now, security: Boolean(input.security), ...(input.releasedAt && { releasedAt: input.releasedAt }) }, trx);
      const actor = { actorType: input.actor.type, actorId: input.actor.id ?? null, ip: input.actor.ip ?? null };
      if (release.security && !before?.security) await audit.record({ ...actor, action: 'release.security_marked', subjectType: 'release', subjectId: String(target), data: { version: target, releasedAt: release.released_at.toISOString() } }, trx);
      const running = await repo.findRunning(target, trx);
      if (running) return { release, rollout: running, created: false };
      const eligible = await repo.eligibleDatabases(target, trx);
      if (eligible.length === 0) return { release, rollout: null, created: false };
      const inserted = await repo.insertRollout(
        {
          id: randomUUID(),
          target_version: target,
          state: 'running',
          security: release.security,
          batch_size: input.batchSize ?? settings.batchSize,
          concurrency: input.concurrency ?? settings.concurrency,
          max_attempts: settings.maxAttempts,
          notices_sent: 0,
          notice_until: null,
          actor_type: input.actor.type,
          actor_id: input.actor.id ?? null,
          created_at: now,
          finished_at: null,
        },
        trx,
      );
      // A concurrent creator committed first: theirs is the rollout.
      if (!inserted) return { release, rollout: (await repo.findRunning(target, trx)) ?? null, created: false };
      const items = await planItems(inserted, eligible, release.security, trx);
      await repo.insertItems(items, trx);
      const noticesSent = await queueNotices(items, eligible, trx);
      const noticeUntil = items.find((i) => i.not_before)?.not_before ?? null;
      if (noticesSent > 0 || noticeUntil) await repo.setNotices(inserted.id, noticesSent, noticeUntil, trx);
      await audit.record(
        {
          ...actor,
          action: 'rollout.started',
          subjectType: 'rollout',
          subjectId: inserted.id,
          data: { targetVersion: target, security: release.security, databases: items.length, deferred: items.filter((i) => i.state === 'deferred').length, noticesSent, noticeUntil: noticeUntil?.toISOString() ?? null },
        },
        trx,
      );
      return { release, rollout: { ...inserted, notices_sent: noticesSent, notice_until: noticeUntil }, created: true };
    });
  }

  /** Closes the rollout once nothing is open (one audit entry, whichever worker gets there first). */
  async function finishIfDone(rollout: RolloutRow): Promise<void> {
    await db.transaction().execute(async (trx) => {
      if (await repo.hasOpenItems(rollout.id, trx)) return;
      const counts = await repo.counts(rollout.id, clock.now(), trx);
      const closed = await repo.finishRollout(rollout.id, counts.failed > 0 ? 'failed' : 'succeeded', clock.now(), trx);
      if (!closed) return;
      await audit.record({ actorType: 'system', action: 'rollout.finished', subjectType: 'rollout', subjectId: rollout.id, data: { targetVersion: rollout.target_version, state: closed.state, ...counts } }, trx);
    });
  }

  /** Upgrades one tenant database under a lease; every outcome is recorded on its item. */
  async function processItem(rollout: RolloutRow, security: boolean, candidate: ItemRow): Promise<void> {
    const key = { rolloutId: rollout.id, tenantDatabaseId: candidate.tenant_database_id };
    const started = clock.now();
    const item = await repo.claimItem(key, workerId, started, new Date(started.getTime() + leaseMs));
    if (!item) return; // another worker has it
    const release = (patch: Parameters<RolloutsRepo['releaseItem']>[2]) => repo.releaseItem(key, workerId, patch);
    const database = await repo.databaseOfItem(item.tenant_database_id);
    if (!database || (database.state !== 'pooled' && database.state !== 'assigned') || database.tenant_state === 'destroyed') {
      await release({ state: 'skipped', last_error: 'the tenant database no longer exists', finished_at: clock.now() });
      return;
    }
    if (security && database.tenant_id) {
      // A written request recorded after the rollout started still counts.
      const [deferral] = await repo.deferrals(rollout.target_version, [database.tenant_id]);
      if (deferral && deferralInForce(deferral, parisDate(clock.now()))) {
        await release({ state: 'deferred', deferral_id: deferral.id, finished_at: clock.now() });
        return;
      }
    }
    // Renew the lease while the upgrade runs (a big table can take a while).
    const heartbeat = setInterval(() => {
      repo.extendLease(key, workerId, new Date(clock.now().getTime() + leaseMs)).catch((err: unknown) => logger.warn({ err, ...key }, 'rollout lease renewal failed'));
    }, Math.max(1_000, Math.floor(leaseMs / 3)));
    heartbeat.unref();
    try {
      await deps.beforeUpgrade?.(item.tenant_database_id);
      const result = await deps.upgrade(item.tenant_database_id, { target: rollout.target_version, migrations, lockTimeoutMs: settings.lockTimeoutMs });
      if (!(await release({ state: 'done', from_version: result.from, last_error: null, finished_at: clock.now() }))) logger.warn(key, 'rollout item upgraded after its lease was taken over');
    } catch (err) {
      const error = describeFailure(err);
      if (err instanceof AppError && err.code === 'tenant_database_not_found') {
        await release({ state: 'skipped', last_error: error, finished_at: clock.now() });
      } else if (item.attempts >= rollout.max_attempts) {
        logger.warn({ ...key, attempts: item.attempts, error }, 'tenant upgrade failed; giving up on this tenant (it stays on its old version)');
        await release({ state: 'failed', last_error: error, finished_at: clock.now() });
      } else {
        logger.info({ ...key, attempts: item.attempts, error }, 'tenant upgrade failed; will retry');
        await release({ state: 'pending', last_error: error, next_attempt_at: new Date(clock.now().getTime() + retryDelayMs(item.attempts)) });
      }
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function outcome(rolloutId: string, status: RunOutcome['status'], waitingUntil: Date | null): Promise<RunOutcome> {
    const rollout = (await repo.findRollout(rolloutId))!;
    return { rollout, counts: await repo.counts(rolloutId, clock.now()), status, waitingUntil, failures: await repo.itemsWithTenant(rolloutId, ['failed'], 1000) };
  }

  /**
   * Runs a rollout until nothing is left to do now: batch after batch of takeable items; waits
   * in-process for retries and for leases of other workers, but not for notice periods (returns
   * `waiting`). Safe to call on any number of workers at once, and again after a crash.
   */
  async function run(rolloutId: string, options: RunOptions = {}): Promise<RunOutcome> {
    const rollout = isUuid(rolloutId) ? await repo.findRollout(rolloutId) : undefined;
    if (!rollout) throw notFound('rollout_not_found', 'No such rollout.');
    if (rollout.state !== 'running') return outcome(rolloutId, 'finished', null);
    const batchSize = options.batchSize ?? rollout.batch_size;
    const concurrency = options.concurrency ?? rollout.concurrency;
    checkRange('batch_size', batchSize, 1, 1000);
    checkRange('concurrency', concurrency, 1, 64);
    // The security flag may have been raised since creation: deferrals count from then on.
    const security = rollout.security || Boolean((await repo.findRelease(rollout.target_version))?.security);
    let batch = 0;
    for (;;) {
      if (options.signal?.aborted) return outcome(rolloutId, 'stopped', null);
      const items = await repo.readyItems(rolloutId, clock.now(), batchSize);
      if (items.length > 0) {
        batch++;
        await eachLimited(items, concurrency, (item) => processItem(rollout, security, item), options.signal);
        options.onProgress?.({ rolloutId, targetVersion: rollout.target_version, batch, counts: await repo.counts(rolloutId, clock.now()) });
        continue;
      }
      if (!(await repo.hasOpenItems(rolloutId))) {
        await finishIfDone(rollout);
        return outcome(rolloutId, 'finished', null);
      }
      const wake = await repo.nextWake(rolloutId);
      const waitMs = wake ? wake.getTime() - clock.now().getTime() : 0;
      if (waitMs > MAX_INLINE_WAIT_MS) return outcome(rolloutId, 'waiting', wake);
      await sleep(Math.max(waitMs, 100));
    }
  }

  /** A rollout and its counts (404 when unknown). */
  async function progress(rolloutId: string): Promise<{ rollout: RolloutRow; counts: ItemCounts; failures: ItemWithTenant[]; deferred: ItemWithTenant[] }> {
    const rollout = isUuid(rolloutId) ? await repo.findRollout(rolloutId) : undefined;
    if (!rollout) throw notFound('rollout_not_found', 'No such rollout.');
    const [counts, failures, deferred] = await Promise.all([repo.counts(rolloutId, clock.now()), repo.itemsWithTenant(rolloutId, ['failed'], 1000), repo.itemsWithTenant(rolloutId, ['deferred'], 1000)]);
    return { rollout, counts, failures, deferred };
  }

  async function list(options: { limit?: number; running?: boolean } = {}): Promise<{ rollout: RolloutRow; counts: ItemCounts }[]> {
    const rows = await repo.listRollouts({ limit: options.limit ?? 50, ...(options.running && { state: 'running' as const }) });
    const now = clock.now();
    return Promise.all(rows.map(async (rollout) => ({ rollout, counts: await repo.counts(rollout.id, now) })));
  }

  /** `create`, refusing (409 `rollout_in_progress`) when one is already running for the target. */
  async function start(input: CreateRolloutInput): Promise<CreateResult> {
    const result = await create(input);
    if (result.rollout && !result.created) throw conflict('rollout_in_progress', `A rollout to version ${result.rollout.target_version} is already running.`, { rolloutId: result.rollout.id });
    return result;
  }

  return { create, start, run, progress, list, workerId };
}

export type RolloutService = ReturnType<typeof createRolloutService>;
