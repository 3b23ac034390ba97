/**
 * `havre start` end to end, as a user runs it: a real process with a fresh HAVRE_HOME, its own
 * embedded PostgreSQL servers, the first operator's password printed once, Ctrl-C stopping
 * everything (PostgreSQL included), and a second start reusing the state.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, stat } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, inject, describe, expect, it } from 'vitest';
import { freePort } from '../src/embedded/embedded-postgres.ts';

const root = path.resolve(import.meta.dirname, '..');

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Three consecutive free ports for the embedded servers (control, fr, de), below Linux's
 * ephemeral range (32768–60999): there, the other test files' many client connections take local
 * ports at any moment, and a PostgreSQL that could not bind its port made this test flaky.
 */
async function freeRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 12000);
    const busy = await Promise.all([0, 1, 2].map((i) => portAnswers(base + i)));
    if (!busy.some(Boolean)) return base;
  }
  throw new Error('no free port range');
}

function startHavre(home: string, port: number): { child: ChildProcess; output: () => string; waitFor: (re: RegExp, ms: number) => Promise<string> } {
  const child = spawn(process.execPath, [path.join(root, 'src/cli/havre.ts'), 'start'], {
    cwd: root,
    env: { PATH: process.env.PATH, HAVRE_HOME: home, HAVRE_PORT: String(port), HAVRE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const waitFor = (re: RegExp, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out waiting for ${re}; output:\n${out}`)), ms);
      const check = () => {
        const m = re.exec(out);
        if (m) {
          clearTimeout(deadline);
          resolve(m[0]);
        } else if (child.exitCode !== null) {
          clearTimeout(deadline);
          reject(new Error(`havre exited (${child.exitCode}); output:\n${out}`));
        } else setTimeout(check, 100);
      };
      check();
    });
  return { child, output: () => out, waitFor };
}

async function stopWithCtrlC(child: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  return exited;
}

const children: ChildProcess[] = [];
// A failed assertion must not leave a Havre (and its PostgreSQL servers) running.
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) await stopWithCtrlC(child);
});

describe('havre start', () => {
  it('starts with embedded defaults, prints the first operator once, stops cleanly on Ctrl-C, and reuses its state', async () => {
    const home = await mkdtemp(path.join(inject('testRoot'), 'start-'));
    const base = await freeRange();
    await writeFile(path.join(home, 'havre.json'), JSON.stringify({ embedded: { basePort: base }, tenants: { warmPoolSize: 1 } }));
    const port = await freePort();

    const first = startHavre(home, port);
    children.push(first.child);
    await first.waitFor(/Press Ctrl-C to stop/, 60_000);
    expect(first.output()).toMatch(/e-mail\s+admin@/);
    const password = /^\s+password\s+(\S+)$/m.exec(first.output())?.[1];
    expect(password?.length).toBeGreaterThanOrEqual(20);

    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);
    const landing = await fetch(`http://127.0.0.1:${port}/`);
    expect(await landing.text()).toContain('/api/docs');
    expect((await fetch(`http://127.0.0.1:${port}/api/openapi.json`)).status).toBe(200);
    for (const i of [0, 1, 2]) expect(await portAnswers(base + i)).toBe(true);
    expect(((await stat(path.join(home, 'secrets.json'))).mode & 0o777).toString(8)).toBe('600');

    expect(await stopWithCtrlC(first.child)).toBe(0);
    for (const i of [0, 1, 2]) expect(await portAnswers(base + i)).toBe(false);

    const second = startHavre(home, port);
    children.push(second.child);
    await second.waitFor(/Press Ctrl-C to stop/, 60_000);
    expect(second.output()).not.toMatch(/^\s+password\s/m);
    expect(second.output()).not.toContain(password!);
    expect(await stopWithCtrlC(second.child)).toBe(0);
  }, 150_000);
});
