/**
 * Test harness, run once per `vitest run`: starts three real PostgreSQL 15 clusters (the control
 * plane, and one database server for each of the regions `fr` and `de`), migrates a template
 * control-plane database, and hands connection details to the test files. Each test file then
 * clones its own control-plane database from the template (see test/context.ts).
 */
import { mkdtemp, rm, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { createDb, migrateToLatest } from '../src/db/db.ts';
import { freePort, startEmbeddedCluster, type EmbeddedCluster } from '../src/embedded/embedded-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    controlAdminUrl: string;
    templateDatabase: string;
    regionServers: { region: string; adminUrl: string }[];
    testRoot: string;
  }
}

const TEST_SETTINGS = {
  fsync: 'off',
  synchronous_commit: 'off',
  full_page_writes: 'off',
  max_connections: '400',
  shared_buffers: '64MB',
};

export default async function setup(project: TestProject) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'havre-test-'));
  await chmod(root, 0o755);
  const password = 'test-' + Math.random().toString(36).slice(2);
  const start = async (name: string) =>
    startEmbeddedCluster({ dataDir: path.join(root, name), port: await freePort(), password, settings: TEST_SETTINGS });
  const clusters: EmbeddedCluster[] = await Promise.all([start('control'), start('fr'), start('de')]);
  const [control, fr, de] = clusters as [EmbeddedCluster, EmbeddedCluster, EmbeddedCluster];

  const admin = new pg.Client({ connectionString: control.url('postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE havre_template');
  await admin.end();
  const template = createDb(control.url('havre_template'), 1);
  await migrateToLatest(template);
  await template.destroy();

  project.provide('controlAdminUrl', control.url('postgres'));
  project.provide('templateDatabase', 'havre_template');
  project.provide('regionServers', [
    { region: 'fr', adminUrl: fr.url('postgres') },
    { region: 'de', adminUrl: de.url('postgres') },
  ]);
  project.provide('testRoot', root);

  return async () => {
    await Promise.allSettled(clusters.map((c) => c.stop()));
    await rm(root, { recursive: true, force: true });
  };
}
