/**
 * Composition root of the workspace module: the business application Havre hosts — a receivables
 * workspace in each tenant's own database, reached only through the tenant's own role.
 *
 *   schema/NNNN_*.sql      the workspace schema, numbered migrations applied inside tenant databases
 *   tenant-schema.ts       loads them; upgrades one tenant database, locked and all-or-nothing (TEN-6)
 *   personal-data.ts       every column, with its personal-data category (APP-4)
 *   workspace-access.ts    request → tenant (membership, role, state, schema) → tenant-role connection
 *   record-spec.ts         how a record kind is described; record-specs.ts: the kinds (APP-1)
 *   records-sql.ts         generic list/get/create/update/delete SQL; records-routes.ts: the REST routes
 *   settings.ts            the workspace settings (administrators and owners change them)
 */
import type pg from 'pg';
import { lazyRoutes, type Core, type HavreModule } from '../../core.ts';
import type { Clock } from '../../lib/clock.ts';
import type { FleetModule } from '../fleet/index.ts';
import { storageRoot } from '../../config/config.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { createAttachmentService } from './attachments-service.ts';
import { createReminderService, tenantNameFrom } from './reminders.ts';
import { LATEST_SCHEMA_VERSION, MIN_SERVED_SCHEMA_VERSION, upgradeTenantSchema, WORKSPACE_MIGRATIONS, type TenantMigration, type UpgradeResult } from './tenant-schema.ts';
import { createWorkspaceAccess, type WorkspaceAccess } from './workspace-access.ts';

export interface WorkspaceModule extends HavreModule {
  access: WorkspaceAccess;
  /**
   * Upgrades one tenant database to `target` (default: the latest) through its own role, in one
   * locked transaction, and records the version reached in the control plane.
   */
  upgrade(tenantDatabaseId: string, options?: { target?: number; migrations?: readonly TenantMigration[] }): Promise<UpgradeResult>;
}

/** What the fleet runs on every new tenant database before pooling it: the latest workspace schema. */
export function workspaceInitializer(clock: Clock): (client: pg.Client) => Promise<number> {
  return async (client) => (await upgradeTenantSchema(client, WORKSPACE_MIGRATIONS, LATEST_SCHEMA_VERSION, { now: clock.now() })).to;
}

export function createWorkspaceModule(core: Core, deps: { fleet: Pick<FleetModule, 'connections' | 'databases'> }): WorkspaceModule {
  const { fleet } = deps;
  async function upgrade(tenantDatabaseId: string, options: { target?: number; migrations?: readonly TenantMigration[] } = {}): Promise<UpgradeResult> {
    const migrations = options.migrations ?? WORKSPACE_MIGRATIONS;
    const target = options.target ?? migrations.length;
    const result = await fleet.connections.withTenant(tenantDatabaseId, (client) => upgradeTenantSchema(client, migrations, target, { now: core.clock.now() }));
    await fleet.databases.recordSchemaVersion(tenantDatabaseId, result.to);
    return result;
  }
  const access = createWorkspaceAccess({
    db: core.db,
    cache: core.authCache.tenantAccess,
    withTenant: (id, fn) => fleet.connections.withTenant(id, fn),
    upgrade: async (id) => (await upgrade(id)).to,
    minSchemaVersion: MIN_SERVED_SCHEMA_VERSION,
  });
  const reminders = createReminderService({ mailer: core.mailer, clock: core.clock, tenantName: tenantNameFrom(core.db) });
  const attachments = createAttachmentService({ access, storage: createFsStorage(storageRoot(core.config)), withTenant: (id, fn) => fleet.connections.withTenant(id, fn), clock: core.clock, maxBytes: core.config.workspace.attachments.maxBytes, logger: core.logger });
  return {
    // One plugin per part of the workspace.
    routes: lazyRoutes(async () => {
      const [records, receivables, files] = await Promise.all([import('./records-routes.ts'), import('./receivables-routes.ts'), import('./attachments-routes.ts')]);
      const plugins = [
        records.workspaceRecordRoutes(access, core.clock),
        receivables.workspaceReceivablesRoutes(access, reminders, core.clock),
        files.workspaceAttachmentRoutes(access, attachments, core.clock),
      ];
      return async (app) => {
        for (const plugin of plugins) await plugin(app);
      };
    }),
    access,
    upgrade,
  };
}
