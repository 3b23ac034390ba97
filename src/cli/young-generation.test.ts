import { describe, expect, it } from 'vitest';
import { isLongRunning } from './young-generation.ts';

describe('young-generation', () => {
  it('keeps V8 defaults for the server only: the first non-option argument is the command', () => {
    expect(isLongRunning(['node', 'havre.ts', 'start'])).toBe(true);
    expect(isLongRunning(['node', 'havre.ts', '--json', 'start'])).toBe(true);
    expect(isLongRunning(['node', 'havre.ts', 'backup', 'run', '--tenant', 'start'])).toBe(false);
    expect(isLongRunning(['node', 'havre.ts', 'tenant', 'list'])).toBe(false);
    expect(isLongRunning(['node', 'havre.ts'])).toBe(false);
  });
});
