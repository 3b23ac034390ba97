/**
 * Test helpers of the rollouts module (not loaded by the application, and free of vitest so that
 * a child process can load them too): workspace migration sets with extra test versions, and a
 * rollouts module built on a test context with its clock as the time source.
 */
import type { Core } from '../../core.ts';
import { LATEST_SCHEMA_VERSION, parseMigration, WORKSPACE_MIGRATIONS, type TenantMigration } from '../workspace/tenant-schema.ts';
import type { WorkspaceModule } from '../workspace/index.ts';
import { createRolloutsModule, type RolloutsModule, type RolloutsOptions } from './index.ts';

/** The shipped migrations plus one test version per SQL text after them (LATEST + 1, + 2…). */
export function withExtraMigrations(...texts: string[]): TenantMigration[] {
  return [...WORKSPACE_MIGRATIONS, ...texts.map((text, i) => parseMigration(LATEST_SCHEMA_VERSION + i + 1, `rollout_test_${i + 1}`, text))];
}

/**
 * Two slow test versions with effects that are not idempotent (rows inserted): applied twice,
 * a tenant would show a duplicate row. Used by the kill-and-resume test and its child process.
 */
export const SLOW_MIGRATIONS: readonly TenantMigration[] = withExtraMigrations(
  'CREATE TABLE resume_probe (n int NOT NULL); INSERT INTO resume_probe VALUES (1); SELECT pg_sleep(0.2);',
  'INSERT INTO resume_probe VALUES (2); SELECT pg_sleep(0.2);',
);

/**
 * A rollouts module over `core` with test migrations; `sleep` moves `clock` instead of waiting
 * (back-offs and expired leases pass at once) unless the test gives its own.
 */
export function testRollouts(core: Core, workspace: Pick<WorkspaceModule, 'upgrade'>, clock: { advance(ms: number): void }, options: RolloutsOptions = {}): RolloutsModule {
  return createRolloutsModule(core, { workspace }, {
    sleep: async (ms) => {
      clock.advance(ms);
    },
    ...options,
  });
}
