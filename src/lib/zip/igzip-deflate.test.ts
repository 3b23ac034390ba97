import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import zlib from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { childProcessesNamed, collectBytes } from '../../../test/processes.ts';
import { gzipHeaderLength, igzipDeflate } from './igzip-deflate.ts';
import { igzipAvailable, isalLevel, useIgzipCommand } from '../igzip.ts';
import { ZipWriter } from './zip-writer.ts';

/** CSV-like text that compresses. */
function text(bytes: number): Buffer {
  const lines: string[] = [];
  for (let i = 0, n = 0; n < bytes; i++) {
    const line = `${i},"client ${i % 89}, Lyon",${(i * 7919) % 10007},2026-05-${String((i % 28) + 1).padStart(2, '0')}T08:00:00Z\r\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

afterEach(() => {
  useIgzipCommand('igzip');
});

describe('igzipDeflate (ISA-L igzip, a child process per stream)', () => {
  it('is installed here (Debian package isal; .ci/run installs it)', () => {
    expect(igzipAvailable()).toBe(true);
  });

  it('gives one raw deflate stream that zlib inflates back, smaller than the input, with the CRC-32 and size of what went in', async () => {
    const data = Buffer.concat([text(3 * 1024 * 1024), randomBytes(100_000), Buffer.from('fin\r\n')]);
    const facts = { crc32: 0, size: 0 };
    const out = await collectBytes(igzipDeflate(chunksOf(data, 50_000), 1, facts));
    expect(zlib.inflateRawSync(out).equals(data)).toBe(true);
    expect(out.length).toBeLessThan(data.length / 2);
    expect(facts).toEqual({ crc32: zlib.crc32(data), size: data.length });
  });

  it('handles an empty input, one-byte chunks and every level', async () => {
    expect(zlib.inflateRawSync(await collectBytes(igzipDeflate([], 1))).length).toBe(0);
    const small = Buffer.from('a, b, c\r\n'.repeat(50));
    expect(zlib.inflateRawSync(await collectBytes(igzipDeflate(chunksOf(small, 1), 1))).equals(small)).toBe(true);
    for (const level of [1, 2, 5, 6, 9]) expect(zlib.inflateRawSync(await collectBytes(igzipDeflate([small], level))).equals(small)).toBe(true);
    expect([1, 2, 5, 6, 9].map(isalLevel)).toEqual([1, 2, 2, 3, 3]);
    expect(() => isalLevel(0)).toThrow(RangeError);
  });

  it('parses gzip headers with optional fields, and waits for a header split across chunks', () => {
    const plain = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    expect(gzipHeaderLength(plain)).toBe(10);
    expect(gzipHeaderLength(plain.subarray(0, 9))).toBe(-1);
    const named = Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 8 | 4 | 2, 0, 0, 0, 0, 0, 3, 3, 0, 1, 2, 3]), Buffer.from('name.csv\0'), Buffer.from([9, 9, 0xaa])]);
    expect(gzipHeaderLength(named)).toBe(10 + 2 + 3 + 9 + 2);
    expect(gzipHeaderLength(named.subarray(0, 20))).toBe(-1);
    expect(() => gzipHeaderLength(Buffer.from('PK\u0003\u0004 not gzip'))).toThrow(/not a gzip/);
  });

  it('fails when the source throws, and leaves no igzip process behind', async () => {
    async function* failing() {
      yield text(200_000);
      throw new Error('the COPY failed');
    }
    await expect(collectBytes(igzipDeflate(failing(), 1))).rejects.toThrow('the COPY failed');
    await sleep(50);
    expect(childProcessesNamed('igzip')).toEqual([]);
  });

  it('kills igzip when the consumer stops early', async () => {
    const stream = igzipDeflate(chunksOf(randomBytes(8 * 1024 * 1024), 64 * 1024), 1);
    await stream.next();
    await stream.return(undefined);
    await sleep(50);
    expect(childProcessesNamed('igzip')).toEqual([]);
  });

  it('fails clearly when igzip cannot run, and ZipWriter then falls back to zlib by itself', async () => {
    useIgzipCommand('/nonexistent/igzip');
    expect(igzipAvailable()).toBe(false);
    await expect(collectBytes(igzipDeflate([Buffer.from('x')], 1))).rejects.toThrow(/ENOENT/);
    const writer = new ZipWriter();
    const zip = collectBytes(writer.output);
    const data = text(300_000);
    const facts = await writer.addEntry('fallback.csv', [data], { mtime: new Date(2026, 0, 1), level: 1 });
    await writer.finish();
    const archive = await zip;
    const start = 30 + 'fallback.csv'.length;
    expect(zlib.inflateRawSync(archive.subarray(start, start + facts.compressedSize)).equals(data)).toBe(true);
  });

  it('reports igzip\'s own failure (exit status), not the EPIPE of writing to it', async () => {
    useIgzipCommand('false'); // exits 1 at once, reading nothing
    await expect(collectBytes(igzipDeflate(chunksOf(randomBytes(4 * 1024 * 1024), 64 * 1024), 1))).rejects.toThrow(/^igzip failed \(exit 1\)/);
  });

  it('holds the source back while its output is not read (pipes, not memory)', async () => {
    const data = randomBytes(32 * 1024 * 1024);
    let yielded = 0;
    function* counted() {
      for (const chunk of chunksOf(data, 64 * 1024)) {
        yielded += chunk.length;
        yield chunk;
      }
    }
    const stream = igzipDeflate(counted(), 1);
    await stream.next();
    for (let last = -1; yielded !== last; ) {
      last = yielded;
      await sleep(100);
    }
    // Two pipe buffers, igzip's own buffers and a chunk or two: far from the 32 MiB offered.
    expect(yielded).toBeLessThan(4 * 1024 * 1024);
    const rest = await collectBytes(stream);
    expect(rest.length).toBeGreaterThan(0);
  });
});
