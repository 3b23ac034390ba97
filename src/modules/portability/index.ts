/**
 * Composition root of the portability module (EXP-1..3): the customer takes all of its data out at
 * any time, free, in open formats, and brings an export back into a new tenant.
 *
 *   formats.ts           CSV (RFC 4180) writer and parser, JSON Lines, XML, SpreadsheetML parts
 *   tenant-tables.ts     the tenant's tables from the catalog, in dependency order; cursor reads
 *   export-writer.ts     one archive, streamed: every table in four formats, attachments, manifest last
 *   export-readme.ts     README.txt of the archive, FR/EN
 *   export-service.ts    claim, build on this node (atomic file), progress, signed download, sweep
 *   import-archive.ts    an export archive → a new, empty tenant, in one transaction
 *   import-csv.ts        a CSV of one table with a column mapping → a validation report, all or nothing
 *   portability-routes.ts, portability-presenters.ts, portability-cli.ts, portability-tables.ts
 *
 * Background work of a node (`start`, every minute): abandoned exports (their node died) become
 * `failed` and lose their partial file; expired archives are deleted.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Core, HavreModule } from '../../app.ts';
import { storageRoot } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import { AppError, badRequest, conflict, notFound } from '../../lib/errors.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import type { Principal } from '../accounts/authn.ts';
import { MANAGERS } from '../accounts/membership.ts';
import type { FleetModule } from '../fleet/index.ts';
import { attachmentKey } from '../workspace/attachments-service.ts';
import type { WorkspaceModule } from '../workspace/index.ts';
import { createExportService, type ExportService, type PortabilityActor } from './export-service.ts';
import { importArchive, type ImportResult } from './import-archive.ts';
import { CSV_TABLES, importCsv, type CsvReport } from './import-csv.ts';
import { portabilityRoutes } from './portability-routes.ts';

export type { ExportService, PortabilityActor, ImportResult, CsvReport };

/** Tenant states an archive may be imported into (a new tenant is in trial). */
const IMPORTABLE_STATES = ['trial', 'active'];

/** What the routes and the CLI need. */
export interface PortabilityModuleApi {
  db: Db;
  exports: ExportService;
  /** Imports the archive file at `archivePath` into the tenant (new, empty); audited. */
  importArchive(tenantId: string, archivePath: string, actor: PortabilityActor, onTable?: (table: string, rows: number) => void): Promise<ImportResult>;
  /** Imports the CSV file at `csvPath` into one table of the tenant, as the member; audited. */
  importCsv(principal: Principal, tenantId: string, table: string, csvPath: string, mapping: Record<string, string> | undefined, ip: string | null): Promise<CsvReport>;
  /** Writes a request body to a temporary file (413 past `importMaxBytes`), runs `fn` on it, removes it. */
  withSpooledBody<T>(body: Readable, fn: (file: string) => Promise<T>): Promise<T>;
}

export interface PortabilityModule extends HavreModule, PortabilityModuleApi {}

/** UTF-8 text of a file, chunk by chunk; a byte sequence that is not UTF-8 is a 400. */
async function* utf8(file: string): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  try {
    for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) yield decoder.decode(chunk, { stream: true });
    yield decoder.decode();
  } catch (err) {
    if (err instanceof TypeError) throw badRequest('csv_not_utf8', 'The CSV file is not UTF-8 text: save it as "CSV UTF-8" and try again.');
    throw err;
  }
}

export function createPortabilityModule(core: Core, deps: { fleet: Pick<FleetModule, 'connections'>; workspace: Pick<WorkspaceModule, 'access'> }): PortabilityModule {
  const { db, config, clock, audit, logger } = core;
  const storage = createFsStorage(storageRoot(config));
  const spoolDir = path.join(config.home, 'imports');
  const exports = createExportService({
    db, clock, audit, logger, secrets: core.secrets, storage, attachmentKey,
    root: path.join(config.home, 'exports'),
    withTenantAsAdmin: (id, fn) => deps.fleet.connections.withTenantAsAdmin(id, fn),
    activity: core.activity,
    settings: { downloadLinkMinutes: config.portability.downloadLinkMinutes, keepHours: config.portability.keepHours },
  });

  const api: PortabilityModuleApi = {
    db,
    exports,

    async importArchive(tenantId, archivePath, actor, onTable) {
      const tenant = await db.selectFrom('tenants').select(['id', 'state', 'tenant_database_id']).where('id', '=', tenantId).executeTakeFirst();
      if (!tenant) throw notFound('tenant_not_found', 'No such tenant.');
      if (!IMPORTABLE_STATES.includes(tenant.state) || !tenant.tenant_database_id) throw conflict('tenant_not_importable', `An archive imports into a new tenant in trial or active state; this one is ${tenant.state}.`, { state: tenant.state });
      const entry = { actorType: actor.type, actorId: actor.id ?? null, ip: actor.ip ?? null, subjectType: 'tenant', subjectId: tenant.id };
      // MET-1: while the archive is imported, this node's CPU counts for the tenant.
      const endActivity = core.activity.begin(tenant.id);
      try {
        const result = await importArchive({ storage, attachmentKey, withTenant: (id, fn) => deps.fleet.connections.withTenant(id, fn) }, archivePath, tenant.tenant_database_id, onTable);
        await audit.record({ ...entry, action: 'import.completed', data: { tables: result.tables, attachments: result.attachments } });
        return result;
      } catch (err) {
        await audit.record({ ...entry, action: 'import.refused', data: { code: err instanceof AppError ? err.code : 'internal' } }).catch(() => {});
        throw err;
      } finally {
        endActivity();
      }
    },

    async importCsv(principal, tenantId, table, csvPath, mapping, ip) {
      const spec = CSV_TABLES[table];
      if (!spec) throw badRequest('unknown_table', `A CSV imports into one of: ${Object.keys(CSV_TABLES).join(', ')}.`);
      const report = await deps.workspace.access.write(principal, tenantId, (client, target) => importCsv(client, spec, utf8(csvPath), mapping, target, clock.now()), MANAGERS);
      await audit.record({ actorType: 'user', actorId: principal.userId, ip, action: 'import.csv', subjectType: 'tenant', subjectId: tenantId, data: { table, rows: report.rowsRead } });
      return report;
    },

    async withSpooledBody(body, fn) {
      await mkdir(spoolDir, { recursive: true });
      const file = path.join(spoolDir, `${randomUUID()}.upload`);
      const max = config.portability.importMaxBytes;
      let size = 0;
      try {
        await pipeline(
          body,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              size += chunk.length;
              if (size > max) throw new AppError(413, 'import_too_large', `An import is at most ${max} bytes.`, { maxBytes: max });
              yield chunk;
            }
          },
          createWriteStream(file, { flags: 'wx' }),
        );
        return await fn(file);
      } finally {
        await rm(file, { force: true });
      }
    },
  };

  return {
    ...api,
    routes: portabilityRoutes(api),
    start() {
      let sweeping: Promise<unknown> | null = null;
      const timer = setInterval(() => {
        if (sweeping) return;
        sweeping = exports
          .sweep()
          .catch((err: unknown) => logger.warn({ err }, 'export sweep failed'))
          .finally(() => (sweeping = null));
      }, 60_000);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await sweeping;
        await exports.drain();
      };
    },
  };
}
