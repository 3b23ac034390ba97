/**
 * Composition root of the retention engine (PRV-4).
 *
 *   src/config/retention-rules.ts  the rules: one place, defaults from PROMISES.md
 *   retention-registry.ts          rule id → the owning module's SQL (apply a batch, oldest record)
 *   retention-engine.ts            the daily job, a function of (deps, now), with evidence
 *   retention-report.ts            the live proof per rule
 *   retention-cli.ts               `havre retention report|run [--as-of]`
 *
 * Modules register their categories: the accounts and mail ones are passed in by `wiring.ts`;
 * a module built later calls `registry.register(...)`. Background work (`start`): every
 * `retention.tickMs` a node claims the day (compare-and-set in the database: once a day across
 * every node) and runs the job at `clock.now()`.
 */
import type { Core, HavreModule } from '../../core.ts';
import type { Config } from '../../config/config.ts';
import { conflict } from '../../lib/errors.ts';
import { createRetentionRegistry, type RetentionCategory, type RetentionRegistry } from './retention-registry.ts';
import { createRetentionRepo, type RetentionRepo } from './retention-repo.ts';
import { runRetention, type RuleOutcome } from './retention-engine.ts';
import { retentionReport, type RuleReport } from './retention-report.ts';

export type { RetentionCategory, RetentionRegistry, RuleOutcome, RuleReport };

export interface RetentionModule extends HavreModule {
  registry: RetentionRegistry;
  repo: RetentionRepo;
  /** Applies every enabled rule at `now` (the daily job's body). */
  run(now: Date, options?: { simulated?: boolean; only?: string[] }): Promise<{ runId: string; outcomes: RuleOutcome[] }>;
  /** Runs today's job if no node has yet (claimed in the database); null when already done. */
  tick(): Promise<{ runId: string; outcomes: RuleOutcome[] } | null>;
  report(now: Date): Promise<{ ok: boolean; at: string; rules: RuleReport[] }>;
  /**
   * A time-travel run (`--as-of`): refused (409 `not_disposable`) unless this installation is
   * disposable (see `assertDisposable`).
   */
  simulate(asOf: Date): Promise<{ runId: string; outcomes: RuleOutcome[] }>;
}

/**
 * Time travel deletes for real whatever is older than its period at the simulated date — on real
 * data that is a deletion of data still under its period. Only a disposable installation allows
 * it: `env: "test"`, or `"disposable": true` in its `havre.json` (refused in production by config).
 */
export function assertDisposable(config: Pick<Config, 'env' | 'disposable'>): void {
  if (config.env === 'test' || (config.disposable && config.env !== 'production')) return;
  throw conflict(
    'not_disposable',
    'Refusing to time-travel on real data: --as-of runs only on a disposable installation (HAVRE_ENV=test, or "disposable": true in havre.json of a copy).',
  );
}

/** Builds the engine; `categories` are the SQL of the modules built before it. */
export function createRetentionModule(core: Core, deps: { categories: RetentionCategory[] }): RetentionModule {
  const { db, clock, config, logger } = core;
  const registry = createRetentionRegistry();
  registry.register(...deps.categories);
  const repo = createRetentionRepo(db);
  const engine = { db, repo, registry, rules: config.retention.rules, batchSize: config.retention.batchSize, clock };
  const run: RetentionModule['run'] = (now, options) => runRetention(engine, now, options);

  async function tick() {
    const now = clock.now();
    if (!(await repo.claimDay(now.toISOString().slice(0, 10)))) return null;
    const result = await run(now);
    const failed = result.outcomes.filter((o) => o.status !== 'ok');
    if (failed.length > 0) logger.warn({ rules: failed.map((o) => `${o.ruleId}:${o.status}`) }, 'retention rules did not all apply');
    return result;
  }

  return {
    registry,
    repo,
    run,
    tick,
    report: (now) => retentionReport({ db, repo, registry, rules: config.retention.rules, tickMs: config.retention.tickMs }, now),
    simulate(asOf) {
      assertDisposable(config);
      return run(asOf, { simulated: true });
    },
    routes: async () => {},
    start() {
      let running: Promise<unknown> | null = null;
      const go = () => {
        if (running) return;
        running = tick()
          .catch((err: unknown) => logger.warn({ err }, 'retention run failed'))
          .finally(() => (running = null));
      };
      go();
      const timer = setInterval(go, config.retention.tickMs);
      timer.unref();
      return async () => {
        clearInterval(timer);
        await running;
      };
    },
  };
}
