/**
 * Finds the tests that prove each promise: a test proves promise X when its name starts with
 * `[X]`. Read from the test sources, so the list can never claim a test that does not exist.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PROMISES } from './catalog.ts';

export interface PromiseTest {
  file: string;
  name: string;
}

const TEST_NAME = /\b(?:it|test)(?:\.\w+)?\(\s*(['"`])\[([A-Z]+-\d+)\]\s*([^'"`]*)\1/g;

async function testFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await testFiles(full)));
    else if (entry.name.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

/** Map promise ID → tests naming it, from the test files under `root` (src/ and test/). */
export async function findPromiseTests(root: string): Promise<Map<string, PromiseTest[]>> {
  const found = new Map<string, PromiseTest[]>();
  for (const sub of ['src', 'test']) {
    const dir = path.join(root, sub);
    for (const file of await testFiles(dir).catch(() => [])) {
      const text = await readFile(file, 'utf8');
      for (const m of text.matchAll(TEST_NAME)) {
        const list = found.get(m[2]!) ?? [];
        list.push({ file: path.relative(root, file), name: `[${m[2]}] ${m[3]!.trim()}` });
        found.set(m[2]!, list);
      }
    }
  }
  return found;
}

export function promiseIds(): Set<string> {
  return new Set(PROMISES.map((p) => p.id));
}
