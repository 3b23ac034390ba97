import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deflateBlock } from './deflate-workers.ts';

describe('deflateBlock (worker threads)', () => {
  it('deflates many blocks at once, each answer going to its own block; a sync-flushed block and a final one inflate back', async () => {
    const blocks = Array.from({ length: 24 }, (_, i) => Buffer.concat([Buffer.from(`block ${i} `.repeat(2000 + i)), randomBytes(i * 100)]));
    const outs = await Promise.all(blocks.map((b, i) => deflateBlock(b, 1 + (i % 9), i === blocks.length - 1)));
    // Each non-final output is byte-aligned and independent: concatenated, they are one stream.
    expect(zlib.inflateRawSync(Buffer.concat(outs)).equals(Buffer.concat(blocks))).toBe(true);
    // The caller's block is untouched (the worker got a copy of it).
    expect(blocks[3]!.subarray(0, 8).toString()).toBe('block 3 ');
  });

  it('rejects with the worker\'s error and goes on working afterwards', async () => {
    await expect(deflateBlock(Buffer.from('x'), 42, true)).rejects.toThrow(/deflate failed/);
    const out = await deflateBlock(Buffer.from('after the error'), 6, true);
    expect(zlib.inflateRawSync(out).toString()).toBe('after the error');
  });
});
