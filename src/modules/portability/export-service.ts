/**
 * Exports of a whole tenant (EXP-1, EXP-2): claimed by a row, built server-side on this node into
 * `<home>/exports/<tenantId>/<exportId>.zip`, downloaded through a signed, expiring link.
 *
 * Crash safety: the archive is written to `<exportId>.zip.partial`, fsynced, then renamed to its
 * final name — only then is the row marked `complete`. A crash leaves a `.partial` (never a file
 * that looks complete) and a `running` row whose lease lapses; `sweep` marks it `failed` and
 * removes the leftover. One export runs per tenant at a time (a unique index on running rows).
 *
 * The tenant database is read through the server's admin connection with `SET ROLE` to the
 * tenant's role, so the owner of a cancelled tenant (whose role may no longer log in) can still
 * export during the grace period (TEN-4), and the export sees exactly what the tenant sees.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import { AppError, conflict, notFound } from '../../lib/errors.ts';
import { syncDirectory } from '../../lib/storage/fs-storage.ts';
import type { Storage } from '../../lib/storage/storage.ts';
import type { AuditService } from '../audit/audit-service.ts';
import { writeArchive, type ExportProgress } from './export-writer.ts';
import type { Selectable } from 'kysely';
import type { ExportsTable } from './portability-tables.ts';
import { countRows, describeTables } from './tenant-tables.ts';

/** Tenant states in which an export may be made: everything but provisioning and destroyed (TEN-4: cancelled too). */
export const EXPORTABLE_STATES = ['trial', 'active', 'suspended', 'cancelled'] as const;
const DOWNLOAD_CONTEXT = 'export-download';
/** A running export renews its lease at least this often; a lease lapsed twice over means its node died. */
const LEASE_MS = 60_000;

export interface PortabilityActor {
  type: 'user' | 'cli' | 'system';
  id?: string | null;
  ip?: string | null;
}

export interface ExportServiceDeps {
  db: Db;
  clock: Clock;
  secrets: SecretBox;
  audit: AuditService;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** Where archives are built: `<home>/exports`. */
  root: string;
  /** Attachment bytes (the tenant's area of the file storage). */
  storage: Storage;
  attachmentKey(tenantDatabaseId: string, attachmentId: string): string;
  withTenantAsAdmin<T>(tenantDatabaseId: string, fn: (client: pg.Client) => Promise<T>): Promise<T>;
  settings: { downloadLinkMinutes: number; keepHours: number };
  /** MET-1: while an export is built, this node's CPU counts for its tenant. */
  activity?: { begin(tenantId: string): () => void };
}

interface DownloadClaim {
  exportId: string;
  tenantId: string;
  userId: string | null;
  expiresAt: number;
}

/** An export as read from the database. */
export type ExportRow = Selectable<ExportsTable>;

export function createExportService(deps: ExportServiceDeps) {
  const { db, clock, audit } = deps;
  const workerId = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const running = new Set<Promise<unknown>>();

  const finalPath = (row: Pick<ExportRow, 'tenant_id' | 'id'>) => path.join(deps.root, row.tenant_id, `${row.id}.zip`);
  const partialPath = (row: Pick<ExportRow, 'tenant_id' | 'id'>) => `${finalPath(row)}.partial`;
  const leaseUntil = () => new Date(Date.now() + 2 * LEASE_MS);

  async function tenantOf(tenantId: string) {
    const tenant = await db.selectFrom('tenants').select(['id', 'name', 'state', 'tenant_database_id']).where('id', '=', tenantId).executeTakeFirst();
    if (!tenant) throw notFound('tenant_not_found', 'No such tenant.');
    if (!(EXPORTABLE_STATES as readonly string[]).includes(tenant.state) || !tenant.tenant_database_id) {
      throw conflict('tenant_not_exportable', `A tenant in state ${tenant.state} cannot be exported.`, { state: tenant.state });
    }
    return { ...tenant, tenant_database_id: tenant.tenant_database_id };
  }

  /** Builds the archive of a claimed export; marks the row complete or failed. Never throws. */
  async function build(row: ExportRow, tenant: Awaited<ReturnType<typeof tenantOf>>, onProgress?: (p: ExportProgress) => void): Promise<ExportRow> {
    const partial = partialPath(row);
    let lastWrite = 0;
    try {
      await mkdir(path.dirname(partial), { recursive: true });
      const result = await deps.withTenantAsAdmin(tenant.tenant_database_id, async (client) => {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        try {
          await client.query(`SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 3; SET LOCAL IntervalStyle = 'iso_8601'`);
          const tables = await describeTables(client);
          const counts = await countRows(client, tables);
          const { rows } = await client.query<{ schema_version: number }>('SELECT schema_version FROM havre_meta');
          const out = createWriteStream(partial, { flags: 'wx' });
          const written = await writeArchive(
            {
              client, tables, counts, exportId: row.id, tenant: { id: tenant.id, name: tenant.name }, takenAt: clock.now(), schemaVersion: rows[0]?.schema_version ?? 0, locale: row.locale,
              openAttachment: async (id) => (await deps.storage.get(deps.attachmentKey(tenant.tenant_database_id, id))).body,
              onProgress: async (p) => {
                onProgress?.(p);
                if (Date.now() - lastWrite < 1000 && p.phase !== 'finishing') return;
                lastWrite = Date.now();
                await db.updateTable('exports').set({ phase: p.phase, tables_done: p.tablesDone, tables_total: p.tablesTotal, rows_written: String(p.rowsWritten), rows_total: String(p.rowsTotal), lease_until: leaseUntil() }).where('id', '=', row.id).where('state', '=', 'running').execute();
              },
            },
            out,
          );
          await client.query('COMMIT');
          return { ...written, rowsWritten: 4 * [...counts.values()].reduce((a, b) => a + b, 0), tablesTotal: 4 * tables.length };
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      });
      // Durable, then visible under its final name: the rename is what makes an archive complete.
      const handle = await open(partial, 'r+');
      await handle.sync().finally(() => handle.close());
      await rename(partial, finalPath(row));
      await syncDirectory(path.dirname(partial));
      const now = clock.now();
      const done = await db
        .updateTable('exports')
        .set({ state: 'complete', phase: 'complete', size_bytes: String(result.sizeBytes), sha256: result.sha256, completed_at: now, expires_at: new Date(now.getTime() + deps.settings.keepHours * 3_600_000), tables_done: result.tablesTotal, tables_total: result.tablesTotal, rows_written: String(result.rowsWritten), rows_total: String(result.rowsWritten), lease_until: null })
        .where('id', '=', row.id)
        .where('state', '=', 'running')
        .returningAll()
        .executeTakeFirst();
      if (!done) throw new Error('the export was marked failed while it ran (lease lapsed)');
      await audit.record({ actorType: 'system', actorId: null, ip: null, action: 'export.completed', subjectType: 'export', subjectId: row.id, data: { tenantId: row.tenant_id, sizeBytes: result.sizeBytes, sha256: result.sha256 } });
      return done;
    } catch (err) {
      await rm(partial, { force: true }).catch(() => {});
      const message = ((err as Error)?.message ?? String(err)).slice(0, 1000);
      deps.logger.warn({ err, exportId: row.id, tenantId: row.tenant_id }, 'export failed');
      const failed = await db.updateTable('exports').set({ state: 'failed', error: message, lease_until: null }).where('id', '=', row.id).where('state', '=', 'running').returningAll().executeTakeFirst();
      await audit.record({ actorType: 'system', actorId: null, ip: null, action: 'export.failed', subjectType: 'export', subjectId: row.id, data: { tenantId: row.tenant_id } }).catch(() => {});
      return failed ?? (await db.selectFrom('exports').selectAll().where('id', '=', row.id).executeTakeFirstOrThrow());
    }
  }

  const service = {
    /**
     * Claims an export of the tenant (409 `export_running` when one runs) and starts building it on
     * this node; `done` resolves with the final row. The HTTP route answers 202 without waiting.
     */
    async start(tenantId: string, input: { requestedBy: string | null; locale: 'fr' | 'en'; actor: PortabilityActor; onProgress?: (p: ExportProgress) => void }): Promise<{ row: ExportRow; done: Promise<ExportRow> }> {
      const tenant = await tenantOf(tenantId);
      await service.sweep();
      const row = await db
        .insertInto('exports')
        .values({ id: randomUUID(), tenant_id: tenant.id, requested_by: input.requestedBy, locale: input.locale, state: 'running', worker_id: workerId, lease_until: leaseUntil(), started_at: clock.now() })
        .returningAll()
        .executeTakeFirstOrThrow()
        .catch((err: { code?: string }) => {
          if (err.code === '23505') throw conflict('export_running', 'An export of this tenant is already running; wait for it to finish.');
          throw err;
        });
      await audit.record({ actorType: input.actor.type, actorId: input.actor.id ?? null, ip: input.actor.ip ?? null, action: 'export.requested', subjectType: 'export', subjectId: row.id, data: { tenantId: tenant.id } });
      // The lease is renewed while the export runs, even through a long table or file.
      const heartbeat = setInterval(() => void db.updateTable('exports').set({ lease_until: leaseUntil() }).where('id', '=', row.id).where('state', '=', 'running').execute().catch(() => {}), LEASE_MS / 2);
      heartbeat.unref();
      const endActivity = deps.activity?.begin(tenant.id) ?? (() => {});
      const done = build(row, tenant, input.onProgress).finally(() => {
        clearInterval(heartbeat);
        endActivity();
      });
      // The HTTP route does not wait for `done`: a failure (e.g. the node shutting down mid-export)
      // is recorded by `build` or the next sweep, and must never become an unhandled rejection.
      done.catch((err: unknown) => deps.logger.warn({ err, exportId: row.id }, 'export ended with an error'));
      running.add(done);
      void done.finally(() => running.delete(done)).catch(() => {});
      return { row, done };
    },

    async list(tenantId: string): Promise<ExportRow[]> {
      return db.selectFrom('exports').selectAll().where('tenant_id', '=', tenantId).orderBy('started_at', 'desc').limit(50).execute();
    },

    async get(tenantId: string, exportId: string): Promise<ExportRow> {
      const row = await db.selectFrom('exports').selectAll().where('id', '=', exportId).where('tenant_id', '=', tenantId).executeTakeFirst();
      if (!row) throw notFound('export_not_found', 'No such export.');
      return row;
    },

    /** Where a complete export's archive is (the CLI copies it). */
    archivePath: finalPath,

    /** A signed link valid `downloadLinkMinutes` to a complete, unexpired export. */
    async downloadLink(row: ExportRow, userId: string | null, actor: PortabilityActor): Promise<{ url: string; expiresAt: string }> {
      if (row.state !== 'complete') throw conflict('export_not_complete', `This export is ${row.state}; only a complete export can be downloaded.`, { state: row.state });
      const expiresAt = Math.min(clock.now().getTime() + deps.settings.downloadLinkMinutes * 60_000, row.expires_at!.getTime());
      const claim: DownloadClaim = { exportId: row.id, tenantId: row.tenant_id, userId, expiresAt };
      const token = deps.secrets.seal(JSON.stringify(claim), DOWNLOAD_CONTEXT);
      await audit.record({ actorType: actor.type, actorId: actor.id ?? null, ip: actor.ip ?? null, action: 'export.download_link', subjectType: 'export', subjectId: row.id, data: { tenantId: row.tenant_id } });
      return { url: `/api/v1/export-downloads?token=${encodeURIComponent(token)}`, expiresAt: new Date(expiresAt).toISOString() };
    },

    /** The archive behind a valid link (404 for an altered token, 410 once it expired). */
    async download(token: string, ip: string | null): Promise<{ stream: NodeJS.ReadableStream; size: number; fileName: string; sha256: string }> {
      let claim: DownloadClaim;
      try {
        claim = JSON.parse(deps.secrets.open(token, DOWNLOAD_CONTEXT)) as DownloadClaim;
      } catch {
        throw notFound('download_link_invalid', 'This download link is not valid.');
      }
      if (claim.expiresAt < clock.now().getTime()) throw new AppError(410, 'download_link_expired', 'This download link has expired; ask for a new one.');
      const row = await service.get(claim.tenantId, claim.exportId);
      if (row.state !== 'complete') throw new AppError(410, 'export_gone', 'This export is no longer available; make a new one.');
      const file = finalPath(row);
      const size = (await stat(file)).size;
      await audit.record({ actorType: claim.userId ? 'user' : 'cli', actorId: claim.userId, ip, action: 'export.downloaded', subjectType: 'export', subjectId: row.id, data: { tenantId: row.tenant_id } });
      return { stream: createReadStream(file), size, sha256: row.sha256!, fileName: `havre-export-${row.tenant_id}-${row.started_at.toISOString().slice(0, 10)}.zip` };
    },

    /**
     * Housekeeping, safe on many nodes: running exports whose lease lapsed (their node died) become
     * `failed` and their partial file is removed; complete exports past `expires_at` lose their
     * file and become `expired`. Returns how many of each.
     */
    async sweep(): Promise<{ abandoned: number; expired: number }> {
      const abandoned = await db.updateTable('exports').set({ state: 'failed', error: 'abandoned: the node building it stopped', lease_until: null }).where('state', '=', 'running').where('lease_until', '<', new Date()).returning(['id', 'tenant_id']).execute();
      for (const row of abandoned) await rm(partialPath(row), { force: true });
      const expired = await db.updateTable('exports').set({ state: 'expired' }).where('state', '=', 'complete').where('expires_at', '<', clock.now()).returning(['id', 'tenant_id']).execute();
      for (const row of expired) await rm(finalPath(row), { force: true });
      return { abandoned: abandoned.length, expired: expired.length };
    },

    /** Waits for the exports this node is building (shutdown). */
    async drain(): Promise<void> {
      await Promise.allSettled([...running]);
    },
  };
  return service;
}

export type ExportService = ReturnType<typeof createExportService>;
