/** Runs the real `havre` CLI as a child process against a test context's control-plane database. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from './context.ts';

const root = path.resolve(import.meta.dirname, '..');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(ctx: TestContext, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [path.join(root, 'src/cli/havre.ts'), ...args],
      {
        cwd: root,
        env: {
          PATH: process.env.PATH,
          HAVRE_HOME: ctx.core.config.home,
          HAVRE_DATABASE_URL: ctx.core.config.databaseUrl,
          HAVRE_MASTER_KEY: ctx.core.config.masterKey,
          HAVRE_LOG_LEVEL: 'silent',
        },
        timeout: 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
    // Standard input: what the test gives, else closed at once (no command may wait on a terminal).
    child.stdin?.end(input ?? '');
  });
}
