/**
 * A backup taken in a child process, for the kill -9 test (BKP-6, backups-faults.test.ts): builds
 * the real core and modules from the configuration given as JSON on stdin (the test's home,
 * databaseUrl and masterKey), then takes one backup of the tenant given as argument, printing one
 * JSON line per event. The locations are the configured ones (real locked fs stores), each put slowed down by
 * `<delay ms>` per chunk so that the test can kill the process while parts are being written.
 * Its clock starts at the instant given as first argument and runs at real speed.
 *
 *   node src/modules/backups/backup-kill-fixture.ts <start ISO> <tenant id> <delay ms>
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createCore, createModules } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { createMetrics } from '../../http/metrics.ts';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import { backupStores, createBackupsModule } from './index.ts';

const [startIso, tenantId, delay] = process.argv.slice(2);
const startedAt = Date.now();
const start = Date.parse(startIso!);
const clock = { now: () => new Date(start + (Date.now() - startedAt)) };
const say = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');

let input = '';
for await (const chunk of process.stdin) input += (chunk as Buffer).toString();
const core = createCore(loadConfig({}, JSON.parse(input) as Record<string, unknown>), { clock });
const modules = createModules(core);

async function* slowly(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    await sleep(Number(delay));
    yield chunk;
  }
}
const slow = (store: BackupStore): BackupStore => ({
  ...store,
  put: (key, source, options) => {
    say({ event: 'put', location: store.name, key });
    return store.put(key, slowly(source), options);
  },
});

// A module of its own over slowed stores (its own metrics registry: the alert counter is registered once per registry).
const backups = createBackupsModule({ ...core, metrics: createMetrics() }, modules, { stores: backupStores(core.config, clock).map(slow) });
say({ event: 'started', pid: process.pid });
const row = await backups.service.take(tenantId!, { trigger: 'on_demand', actor: { type: 'cli' } });
say({ event: 'ended', backupId: row.id, state: row.state });
await modules.fleet.connections.closeAll();
await core.db.destroy();
process.exit(0);
