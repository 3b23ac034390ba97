/**
 * A rollout run in a child process, for the kill-and-resume test (TEN-6): builds the real core
 * and modules against the control-plane database given in the environment (like `havre`), then
 * creates (or resumes) the rollout to the target of SLOW_MIGRATIONS and runs it, printing one
 * JSON line per event. Its clock starts at the instant given as first argument and runs at real
 * speed, so its leases are comparable with the test's fixed clock.
 *
 *   node test/rollout-child.ts <start ISO> <batch size> <concurrency>
 */
import { createCore, createModules } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createRolloutsModule } from '../src/modules/rollouts/index.ts';
import { SLOW_MIGRATIONS } from '../src/modules/rollouts/rollouts-fixtures.ts';

const [startIso, batch, concurrency] = process.argv.slice(2);
const startedAt = Date.now();
const start = Date.parse(startIso!);
const clock = { now: () => new Date(start + (Date.now() - startedAt)) };

const core = createCore(loadConfig(process.env), { clock });
const modules = createModules(core);
const rollouts = createRolloutsModule(core, { workspace: modules.workspace }, { migrations: SLOW_MIGRATIONS, workerId: `child-${process.pid}` });
const say = (event: Record<string, unknown>) => process.stdout.write(JSON.stringify(event) + '\n');

const created = await rollouts.service.create({ target: SLOW_MIGRATIONS.length, batchSize: Number(batch), concurrency: Number(concurrency), actor: { type: 'cli' } });
say({ event: 'created', rolloutId: created.rollout?.id, created: created.created });
const outcome = await rollouts.service.run(created.rollout!.id, { onProgress: (p) => say({ event: 'progress', ...p.counts }) });
say({ event: 'ended', status: outcome.status, ...outcome.counts });
await modules.fleet.connections.closeAll();
await core.db.destroy();
process.exit(0);
