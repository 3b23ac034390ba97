import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSecretBox } from './crypto.ts';

describe('secret box', () => {
  const box = createSecretBox(randomBytes(32).toString('base64'));

  it('[SEC-3] seals secrets so that the sealed form does not contain them, and opens them back', () => {
    const sealed = box.seal('postgres://admin:s3cret-pw@db:5432/postgres', 'server:1');
    expect(sealed).not.toContain('s3cret-pw');
    expect(sealed.startsWith('v1.')).toBe(true);
    expect(box.open(sealed, 'server:1')).toBe('postgres://admin:s3cret-pw@db:5432/postgres');
    expect(box.seal('same', 'c')).not.toBe(box.seal('same', 'c'));
  });

  it('[SEC-3] refuses a sealed value moved to another context, altered, or opened with another key', () => {
    const sealed = box.seal('password-of-tenant-a', 'tenant-db:a');
    expect(() => box.open(sealed, 'tenant-db:b')).toThrow();
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3]!, 'base64url');
    ct[0] = ct[0]! ^ 1;
    expect(() => box.open([parts[0], parts[1], parts[2], ct.toString('base64url')].join('.'), 'tenant-db:a')).toThrow();
    const other = createSecretBox(randomBytes(32).toString('base64'));
    expect(() => other.open(sealed, 'tenant-db:a')).toThrow();
  });
});
