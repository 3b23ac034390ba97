import { describe, expect, it } from 'vitest';
import { isUuid } from './ids.ts';

describe('ids', () => {
  it('accepts only well-formed uuids (anything else would be a PostgreSQL error, i.e. a 500)', () => {
    expect(isUuid('0b3c6a52-7f0e-4a51-9d2c-1f2e3d4c5b6a')).toBe(true);
    expect(isUuid('-'.repeat(36))).toBe(false);
    expect(isUuid('0b3c6a527f0e4a519d2c1f2e3d4c5b6a0000')).toBe(false);
    expect(isUuid('')).toBe(false);
  });
});
