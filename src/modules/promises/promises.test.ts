import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROMISES } from './catalog.ts';
import { findPromiseTests, promiseIds } from './promise-tests.ts';

const root = path.resolve(import.meta.dirname, '../../..');

/** The promises of the issues landed so far: each must have at least one [ID] test. */
const DELIVERED = ['ACC-1', 'ACC-2', 'ACC-3', 'ACC-4', 'ACC-5', 'TEN-1', 'TEN-2', 'TEN-3', 'TEN-4', 'TEN-5', 'TEN-6', 'APP-1', 'APP-2', 'APP-3', 'APP-4', 'EXP-1', 'EXP-2', 'EXP-3', 'BKP-1', 'BKP-2', 'BKP-3', 'BKP-4', 'BKP-5', 'BKP-6', 'BKP-7', 'PRV-4', 'SEC-1', 'SEC-3', 'SEC-4', 'SEC-5', 'OPS-2', 'MET-1', 'MET-2', 'MET-3', 'BIL-1', 'BIL-2', 'BIL-3', 'BIL-4', 'BIL-5', 'BIL-6', 'BIL-7', 'BIL-8', 'BIL-9', 'BIL-10', 'BIL-11', 'BIL-12'];

describe('promises', () => {
  it('the catalog has 68 distinct promise IDs', () => {
    expect(promiseIds().size).toBe(PROMISES.length);
    expect(PROMISES.length).toBe(68);
  });

  it('every [ID] used in a test name is a promise of the catalog', async () => {
    const found = await findPromiseTests(root);
    const unknown = [...found.keys()].filter((id) => !promiseIds().has(id));
    expect(unknown).toEqual([]);
  });

  it('every delivered promise is proven by at least one [ID] test', async () => {
    const found = await findPromiseTests(root);
    const missing = DELIVERED.filter((id) => (found.get(id) ?? []).length === 0);
    expect(missing).toEqual([]);
  });
});
