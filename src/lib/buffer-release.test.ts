import { PerformanceObserver, constants } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { bufferReleaser, RELEASE_EVERY_BYTES } from './buffer-release.ts';

/** Young-generation collections seen while `fn` runs. */
async function minorCollections(fn: () => void): Promise<number> {
  let seen = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) if (((entry as unknown as { detail?: { kind?: number } }).detail)?.kind === constants.NODE_PERFORMANCE_GC_MINOR) seen++;
  });
  observer.observe({ entryTypes: ['gc'] });
  fn();
  await new Promise((resolve) => setTimeout(resolve, 50));
  observer.disconnect();
  return seen;
}

describe('bufferReleaser', () => {
  it('runs a young-generation collection once every RELEASE_EVERY_BYTES noted, not before', async () => {
    const released = bufferReleaser();
    expect(await minorCollections(() => released.note(RELEASE_EVERY_BYTES - 1))).toBe(0);
    expect(await minorCollections(() => released.note(1))).toBeGreaterThanOrEqual(1);
    const fewer = bufferReleaser(4);
    expect(await minorCollections(() => [1, 1, 1, 1, 1, 1, 1, 1].forEach((n) => fewer.note(n)))).toBeGreaterThanOrEqual(2);
  });
});
