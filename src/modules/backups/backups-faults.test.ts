/**
 * Backups under faults: a location down (BKP-3), flipped bits in stored copies (BKP-4), a kill -9
 * of the process taking a backup (BKP-6), a restore that dies half-way (BKP-5).
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createStaff, registerServers, type Staff } from '../../../test/factories.ts';
import { backupLocationRoot, storageRoot } from '../../config/config.ts';
import { createMetrics } from '../../http/metrics.ts';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import { createFsStorage } from '../../lib/storage/fs-storage.ts';
import { createRecord, createWorkspace, tenantQuery, type Workspace } from '../workspace/workspace-fixtures.ts';
import { escrowKey } from './backup-keys.ts';
import { createBackupRestore } from './backup-restore.ts';
import { partKey } from './backup-writer.ts';
import { hashStream } from '../../lib/crypto.ts';
import { backupStores, createBackupsModule, type BackupsModule } from './index.ts';
import type { BackupPart } from './backups-tables.ts';

let ctx: TestContext;
let ws: Workspace;
let staff: Staff;
const root = path.resolve(import.meta.dirname, '../../..');
const system = { type: 'system' } as const;

beforeAll(async () => {
  ctx = await createTestContext();
  await registerServers(ctx);
  staff = await createStaff(ctx, 'admin');
  ws = await createWorkspace(ctx, { name: 'Atelier' });
  await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Dupont SARL', registrationId: '732829320', country: 'FR' });
});
afterAll(async () => ctx?.close());

/** A location that cannot be reached while `down.value`: every operation fails like a refused connection. */
function unreachable(store: BackupStore, down: { value: boolean }): BackupStore {
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 192.0.2.7:443'), { code: 'ECONNREFUSED' });
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (!down.value) return (value as (...a: unknown[]) => unknown).apply(target, args);
        if (prop === 'list')
          return (async function* () {
            yield* [];
            throw refused();
          })();
        return Promise.reject(refused());
      };
    },
  });
}

/** A second backups module over the test app's core, with its own stores and metrics registry. */
function moduleWith(stores: BackupStore[]): { module: BackupsModule; registry: ReturnType<typeof createMetrics>['registry'] } {
  const metrics = createMetrics();
  const module = createBackupsModule({ ...ctx.core, metrics }, { fleet: ctx.app.modules.fleet, tenants: ctx.app.modules.tenants, workspace: ctx.app.modules.workspace }, { stores });
  return { module, registry: metrics.registry };
}

async function alertCount(registry: ReturnType<typeof createMetrics>['registry'], kind: string): Promise<number> {
  const text = await registry.metrics();
  const m = new RegExp(`^havre_backup_alerts_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

function fileOf(location: string, tenantId: string, backupId: string, part: BackupPart): string {
  const loc = ctx.core.config.backups.locations.find((l) => l.name === location)!;
  return path.join(backupLocationRoot(ctx.core.config, loc), partKey(tenantId, backupId, part));
}

/** Flips one bit in the middle of a stored copy (the driver's 0o444 mode is lifted, then put back). */
async function flipBit(file: string): Promise<void> {
  await chmod(file, 0o644);
  const bytes = await readFile(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = bytes[at]! ^ 0x10;
  await writeFile(file, bytes);
  await chmod(file, 0o444);
}

async function copyStates(backupId: string): Promise<string[]> {
  const rows = await ctx.core.db.selectFrom('backup_copies').select(['location', 'part', 'state']).where('backup_id', '=', backupId).execute();
  return rows.map((c) => `${c.location}/${c.part}/${c.state}`).sort();
}

async function audited(action: string, subjectId: string): Promise<number> {
  return (await ctx.core.db.selectFrom('audit_log').select('action').where('action', '=', action).where('subject_id', '=', subjectId).execute()).length;
}

/** Verifies every pending complete backup, oldest first. */
async function verifyAll(): Promise<void> {
  while (await ctx.app.modules.backups.service.verifyNext());
}

/** Downloads a backup through its signed link and restores its database.pgdump with stock pg_restore; returns the companies' names. */
async function downloadAndRestore(backupId: string): Promise<string[]> {
  const link = await ws.owner.http.post(`${ws.base}/backups/${backupId}/download-link`);
  expect(link.status, JSON.stringify(link.body)).toBe(201);
  const res = await fetch(ctx.baseUrl + link.body.url);
  expect(res.status).toBe(200);
  const dir = await mkdtemp(path.join(inject('testRoot'), 'faults-download-'));
  await chmod(dir, 0o755);
  await writeFile(path.join(dir, 'backup.tar'), Buffer.from(await res.arrayBuffer()));
  execFileSync('tar', ['xf', 'backup.tar'], { cwd: dir });
  expect((await readdir(dir)).sort()).toEqual(['README.txt', 'attachments.tar', 'backup.tar', 'database.pgdump.gz', 'manifest.json']);
  execFileSync('gunzip', ['database.pgdump.gz'], { cwd: dir }); // format havre-backup/2: stock gunzip, then stock pg_restore
  const admin = ctx.regionServers.find((s) => s.region === 'de')!.adminUrl;
  const name = `faults_${backupId.replace(/-/g, '').slice(0, 12)}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  execFileSync('pg_restore', ['--no-owner', '--no-privileges', '-d', admin.replace(/\/[^/]*$/, `/${name}`), path.join(dir, 'database.pgdump')]);
  const r = new pg.Client({ connectionString: admin.replace(/\/[^/]*$/, `/${name}`) });
  await r.connect();
  const { rows } = await r.query<{ name: string }>('SELECT name FROM companies ORDER BY name');
  await r.end();
  return rows.map((x) => x.name);
}

describe('backups under faults', () => {
  const deDown = { value: true };

  it('[BKP-3] one location unreachable: the backup is incomplete and invisible to the customer, the operator is alerted (mail to staff admins + metric + audit), and a later repair completes it', async () => {
    const faulty = moduleWith(backupStores(ctx.core.config, ctx.clock).map((s) => (s.name === 'de' ? unreachable(s, deDown) : s)));
    const backup = await faulty.module.service.take(ws.tenantId, { trigger: 'on_demand', actor: system });
    expect(backup.state, backup.error ?? '').toBe('incomplete');
    expect(backup.error).toMatch(/de\/database: .*ECONNREFUSED/);
    expect(await copyStates(backup.id)).toEqual(['fr/database/checked', 'fr/files/checked', 'fr/manifest/checked']);

    // Invisible to the customer: neither listed nor readable nor downloadable.
    const list = await ws.owner.http.get(`${ws.base}/backups`);
    expect(list.status).toBe(200);
    expect(list.body.items.map((b: { id: string }) => b.id)).not.toContain(backup.id);
    expect((await ws.owner.http.get(`${ws.base}/backups/${backup.id}`)).status).toBe(404);
    expect((await ws.owner.http.post(`${ws.base}/backups/${backup.id}/download-link`)).status).toBe(404);

    // The operator: a mail to the staff admin, the metric, the audit log.
    const mails = await ctx.core.db.selectFrom('mail_outbox').selectAll().where('template', '=', 'backups.backup_incomplete').where('user_id', '=', staff.userId).execute();
    expect(mails).toHaveLength(1);
    expect(mails[0]!.to_address).toBe(staff.email);
    expect(mails[0]!.body_text).toContain(backup.id);
    expect(mails[0]!.body_text).toContain('Location: de');
    expect(mails[0]!.body_text).not.toContain('Dupont');
    expect(await audited('backup.backup_incomplete', backup.id)).toBeGreaterThan(0);
    expect(await alertCount(faulty.registry, 'backup_incomplete')).toBeGreaterThan(0);
    // A member of the customer gets no such mail.
    expect(await ctx.core.db.selectFrom('mail_outbox').select('id').where('template', 'like', 'backups.%').where('user_id', '=', ws.owner.userId).execute()).toHaveLength(0);

    // Still down: a repair completes nothing.
    expect(await faulty.module.service.repair()).toBe(0);
    expect((await ctx.app.modules.backups.repo.get(backup.id))!.state).toBe('incomplete');

    // The location is back: the repair copies every missing part there and reads it back.
    deDown.value = false;
    expect(await faulty.module.service.repair()).toBe(1);
    const repaired = (await ctx.app.modules.backups.repo.get(backup.id))!;
    expect(repaired.state).toBe('complete');
    expect(repaired.error).toBeNull();
    expect(await copyStates(backup.id)).toEqual(['de/database/checked', 'de/files/checked', 'de/manifest/checked', 'fr/database/checked', 'fr/files/checked', 'fr/manifest/checked']);
    const de = ctx.app.modules.backups.stores.find((s) => s.name === 'de')!;
    for (const c of await ctx.app.modules.backups.repo.copies(backup.id)) {
      if (c.location !== 'de') continue;
      const read = await hashStream((await de.get(c.object_key)).body);
      expect(read.sha256).toBe(c.sha256);
    }
    expect(await audited('backup.repaired', backup.id)).toBe(1);
    expect((await ws.owner.http.get(`${ws.base}/backups`)).body.items.map((b: { id: string }) => b.id)).toContain(backup.id);
  }, 120_000);

  it('[BKP-3] after the repair, the location that was down can restore the backup on its own: it holds the tenant\'s escrowed key too', async () => {
    // The backup above was the tenant's first: its key escrow could not be written to "de" then.
    const de = ctx.app.modules.backups.stores.find((s) => s.name === 'de')!;
    expect(await de.getMutable(escrowKey(ws.tenantId)), 'no escrowed key in "de" after the repair').toBeDefined();
  });

  it('[BKP-4] a flipped bit in the copy read first (de) is detected by verification and by download, and the good copy (fr) is used', async () => {
    await verifyAll(); // the repaired backup above, so that the next verification is of this one
    const backup = await ctx.app.modules.backups.service.take(ws.tenantId, { trigger: 'on_demand', actor: system });
    expect(backup.state).toBe('complete');
    await flipBit(fileOf('de', ws.tenantId, backup.id, 'database'));
    await flipBit(fileOf('de', ws.tenantId, backup.id, 'files'));
    const before = await alertCount(ctx.core.metrics.registry, 'copy_corrupt');

    // Verification: the de database copy fails its hash, the fr one is restored and compared.
    expect(await ctx.app.modules.backups.service.verifyNext()).toBe(true);
    const verified = (await ctx.app.modules.backups.repo.get(backup.id))!;
    expect(verified.verification, verified.verification_error ?? '').toBe('verified');
    expect(await copyStates(backup.id)).toContain('de/database/corrupt');
    expect(await audited('backup.copy_corrupt', backup.id)).toBeGreaterThan(0);
    expect(await alertCount(ctx.core.metrics.registry, 'copy_corrupt')).toBeGreaterThan(before);
    expect(await ctx.core.db.selectFrom('mail_outbox').select('id').where('template', '=', 'backups.copy_corrupt').where('user_id', '=', staff.userId).execute()).not.toHaveLength(0);

    // Download: the de files copy (flipped too) is found corrupt, the fr one is used; the tar restores.
    expect(await downloadAndRestore(backup.id)).toEqual(['Dupont SARL']);
    expect(await copyStates(backup.id)).toEqual(['de/database/corrupt', 'de/files/corrupt', 'de/manifest/checked', 'fr/database/checked', 'fr/files/checked', 'fr/manifest/checked']);
  }, 120_000);

  it('[BKP-4] a flipped bit in the fr copy of the database part is detected by verification (the de copy is used, the fr copy marked corrupt)', async () => {
    await verifyAll();
    const backup = await ctx.app.modules.backups.service.take(ws.tenantId, { trigger: 'on_demand', actor: system });
    expect(backup.state).toBe('complete');
    await flipBit(fileOf('fr', ws.tenantId, backup.id, 'database'));
    expect(await ctx.app.modules.backups.service.verifyNext()).toBe(true);
    const verified = (await ctx.app.modules.backups.repo.get(backup.id))!;
    expect(verified.verification, verified.verification_error ?? '').toBe('verified');
    // Download still works whatever the outcome below.
    expect(await downloadAndRestore(backup.id)).toEqual(['Dupont SARL']);
    expect(await copyStates(backup.id), 'the corrupt fr copy went unnoticed by verification and download').toContain('fr/database/corrupt');
    expect(await audited('backup.copy_corrupt', backup.id)).toBeGreaterThan(0);
  }, 120_000);

  it('[BKP-4] a flipped bit in every copy of a part: verification fails and the operator is alerted', async () => {
    await verifyAll();
    const backup = await ctx.app.modules.backups.service.take(ws.tenantId, { trigger: 'on_demand', actor: system });
    expect(backup.state).toBe('complete');
    await flipBit(fileOf('de', ws.tenantId, backup.id, 'database'));
    await flipBit(fileOf('fr', ws.tenantId, backup.id, 'database'));
    const before = await alertCount(ctx.core.metrics.registry, 'verification_failed');
    expect(await ctx.app.modules.backups.service.verifyNext()).toBe(true);
    const failed = (await ctx.app.modules.backups.repo.get(backup.id))!;
    expect(failed.verification).toBe('failed');
    expect(failed.verification_error).toMatch(/no good copy of the database part/);
    expect(await copyStates(backup.id)).toEqual(expect.arrayContaining(['de/database/corrupt', 'fr/database/corrupt']));
    expect(await audited('backup.verification_failed', backup.id)).toBe(1);
    expect(await alertCount(ctx.core.metrics.registry, 'verification_failed')).toBe(before + 1);
    expect(await ctx.core.db.selectFrom('mail_outbox').select('id').where('template', '=', 'backups.verification_failed').where('user_id', '=', staff.userId).execute()).toHaveLength(1);
    // Neither copy is served any more.
    const link = await ws.owner.http.post(`${ws.base}/backups/${backup.id}/download-link`);
    const res = await fetch(ctx.baseUrl + link.body.url);
    expect(res.status).not.toBe(200);
  }, 120_000);

  it('[BKP-6] a kill -9 in the middle of a backup records no complete backup and leaves no object that passes for one; the next run succeeds', async () => {
    const victim = await createWorkspace(ctx, { name: 'Killed' });
    await tenantQuery(ctx, victim, `CREATE TABLE ballast AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS pad FROM generate_series(1, 200000) g`);

    // Same control plane, home (hence locations and file storage) and master key; the config on stdin.
    const child = spawn(process.execPath, [path.join(root, 'src/modules/backups/backup-kill-fixture.ts'), ctx.clock.now().toISOString(), victim.tenantId, '40'], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.end(JSON.stringify({ env: 'test', home: ctx.core.config.home, databaseUrl: ctx.core.config.databaseUrl, masterKey: ctx.core.config.masterKey, log: { level: 'silent' } }));
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));

    // Killed once its backup row is running and a part is being written (a `.partial` file exists).
    const dirs = ctx.core.config.backups.locations.map((l) => path.join(backupLocationRoot(ctx.core.config, l), 'backups', victim.tenantId));
    const partials = async () => {
      const out: string[] = [];
      for (const d of dirs) for (const e of await readdir(d, { recursive: true, withFileTypes: true }).catch(() => [])) if (e.isFile() && e.name.endsWith('.partial')) out.push(path.join(e.parentPath, e.name));
      return out;
    };
    const deadline = Date.now() + 30_000;
    for (;;) {
      const running = await ctx.core.db.selectFrom('backups').select('id').where('tenant_id', '=', victim.tenantId).where('state', '=', 'running').executeTakeFirst();
      if (running && (await partials()).length > 0) break;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the child never got to writing a part: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    expect(output).not.toContain('"event":"ended"');

    const rows = await ctx.core.db.selectFrom('backups').selectAll().where('tenant_id', '=', victim.tenantId).execute();
    expect(rows).toHaveLength(1);
    const killed = rows[0]!;
    expect(killed.state).toBe('running');
    expect(await ctx.core.db.selectFrom('backup_copies').select('part').where('backup_id', '=', killed.id).execute()).toHaveLength(0);

    // Nothing listed under the killed backup's prefix passes for a backup: no `.partial`, no copy recorded, no manifest.
    const listed: string[] = [];
    for (const store of ctx.app.modules.backups.stores) for await (const obj of store.list(`backups/${victim.tenantId}/${killed.id}`)) listed.push(`${store.name}:${obj.key}`);
    for (const key of listed) {
      expect(key).not.toMatch(/\.partial$/);
      expect(key).not.toMatch(/manifest\.hvr$/);
    }
    for (const store of ctx.app.modules.backups.stores) {
      for (const part of ['database', 'files', 'manifest'] as const) {
        const stat = await store.stat(partKey(victim.tenantId, killed.id, part));
        if (stat) expect(listed).toContain(`${store.name}:${partKey(victim.tenantId, killed.id, part)}`);
      }
    }

    // The lease lapses (moved by SQL rather than waiting a minute): the row is closed as failed, never complete.
    expect(await ctx.app.modules.backups.repo.failAbandoned(new Date())).toHaveLength(0);
    await ctx.core.db.updateTable('backups').set({ lease_until: new Date(Date.now() - 1000) }).where('id', '=', killed.id).execute();
    const abandoned = await ctx.app.modules.backups.repo.failAbandoned(new Date());
    expect(abandoned.map((b) => b.id)).toEqual([killed.id]);
    const closed = (await ctx.app.modules.backups.repo.get(killed.id))!;
    expect(closed.state).toBe('failed');
    expect(closed.error).toMatch(/interrupted/);

    // The next run succeeds (the dead worker's objects do not get in its way).
    const next = await ctx.app.modules.backups.service.take(victim.tenantId, { trigger: 'on_demand', actor: system });
    expect(next.state, next.error ?? '').toBe('complete');
    expect(await copyStates(next.id)).toHaveLength(6);
    const complete = await ctx.core.db.selectFrom('backups').select('id').where('tenant_id', '=', victim.tenantId).where('state', '=', 'complete').execute();
    expect(complete.map((b) => b.id)).toEqual([next.id]);
    // The customer sees only the complete one.
    expect((await victim.owner.http.get(`${victim.base}/backups`)).body.items.map((b: { id: string }) => b.id)).toEqual([next.id]);
  }, 120_000);

  it('[BKP-5] a restore killed midway leaves the tenant unchanged', async () => {
    const backups = ctx.app.modules.backups;
    const backup = await backups.service.take(ws.tenantId, { trigger: 'on_demand', actor: system });
    expect(backup.state).toBe('complete');
    await createRecord(ws.owner.http, `${ws.base}/companies`, { name: 'Later SAS' });

    const files = createFsStorage(storageRoot(ctx.core.config));
    const dying = createBackupRestore({
      db: ctx.core.db, repo: backups.repo, clock: ctx.core.clock, audit: ctx.core.audit, logger: ctx.core.logger, service: backups.service,
      fleet: ctx.app.modules.fleet, tenants: ctx.app.modules.tenants.service, workspace: ctx.app.modules.workspace, files,
      onStep: (step) => {
        if (step === 'restored') throw new Error('killed');
      },
    });
    await expect(dying.restore(ws.tenantId, { backupId: backup.id, mode: 'in-place', confirm: 'Atelier', actor: { type: 'user', id: ws.owner.userId } })).rejects.toThrow('killed');

    const tenant = await ctx.core.db.selectFrom('tenants').select(['tenant_database_id', 'state']).where('id', '=', ws.tenantId).executeTakeFirstOrThrow();
    expect(tenant.tenant_database_id).toBe(ws.tenantDatabaseId);
    expect((await tenantQuery(ctx, ws, 'SELECT name FROM companies ORDER BY name')).map((r) => r.name)).toEqual(['Dupont SARL', 'Later SAS']);
    expect((await ws.owner.http.get(`${ws.base}/companies`)).body.items.map((c: { name: string }) => c.name).sort()).toEqual(['Dupont SARL', 'Later SAS']);
    const restore = await ctx.core.db.selectFrom('backup_restores').selectAll().where('tenant_id', '=', ws.tenantId).orderBy('started_at', 'desc').executeTakeFirstOrThrow();
    expect(restore.state).toBe('failed');
    expect(restore.error).toBe('killed');
    expect(restore.target_database_id).toBeTruthy();
    expect(restore.target_database_id).not.toBe(ws.tenantDatabaseId);
    const target = await ctx.core.db.selectFrom('tenant_databases').select('state').where('id', '=', restore.target_database_id!).executeTakeFirstOrThrow();
    expect(target.state).toBe('dropped');
    expect(await ctx.core.db.selectFrom('tenants').select('id').where('tenant_database_id', '=', restore.target_database_id!).execute()).toHaveLength(0);

    // A restore whose worker died outright (no catch ran): running, a claimed target, its lease lapsed.
    const region = (await ctx.core.db.selectFrom('tenants').select('region').where('id', '=', ws.tenantId).executeTakeFirstOrThrow()).region;
    const prefer = await ctx.app.modules.fleet.databases.ensureAvailable(region);
    const restoreId = crypto.randomUUID();
    const claimed = await ctx.core.db.transaction().execute(async (trx) => {
      const database = await ctx.app.modules.fleet.databases.acquire(region, trx, { prefer });
      await trx.insertInto('backup_restores').values({
        id: restoreId, backup_id: backup.id, tenant_id: ws.tenantId, mode: 'in-place', state: 'running', target_database_id: database.id, safety_backup_id: null, result_tenant_id: null,
        worker_id: 'restore-dead', lease_until: new Date(Date.now() + 60_000), requested_by: 'test', started_at: ctx.core.clock.now(), finished_at: null, error: null,
      }).execute();
      return database.id;
    });
    // Still leased: the sweep leaves it alone.
    expect(await backups.restore.sweep()).toBe(0);
    await ctx.core.db.updateTable('backup_restores').set({ lease_until: new Date(Date.now() - 1000) }).where('id', '=', restoreId).execute();
    expect(await backups.restore.sweep()).toBe(1);
    const swept = await ctx.core.db.selectFrom('backup_restores').selectAll().where('id', '=', restoreId).executeTakeFirstOrThrow();
    expect(swept.state).toBe('failed');
    expect(swept.error).toMatch(/interrupted/);
    expect((await ctx.core.db.selectFrom('tenant_databases').select('state').where('id', '=', claimed).executeTakeFirstOrThrow()).state).toBe('dropped');
    expect((await ctx.core.db.selectFrom('tenants').select('tenant_database_id').where('id', '=', ws.tenantId).executeTakeFirstOrThrow()).tenant_database_id).toBe(ws.tenantDatabaseId);
    expect((await tenantQuery(ctx, ws, 'SELECT name FROM companies ORDER BY name')).map((r) => r.name)).toEqual(['Dupont SARL', 'Later SAS']);
  }, 120_000);
});
