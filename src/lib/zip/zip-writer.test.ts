import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { ZipWriter, type ZipEntryFacts, type ZipWriterOptions } from './zip-writer.ts';

const run = promisify(execFile);
const hasUnzip = spawnSync('unzip', ['-v']).status === 0;
const MTIME = new Date(2026, 4, 17, 13, 45, 28);

interface TestEntry {
  name: string;
  data: Buffer;
  level: number;
  /** Bytes per chunk the source yields; the whole at once when absent. */
  chunkBytes?: number;
}

function* chunksOf(data: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** CSV-like text: repetitive enough to compress, varied enough not to vanish. */
function csvText(bytes: number): Buffer {
  const lines: string[] = [];
  let length = 0;
  for (let i = 0; length < bytes; i++) {
    const line = `${i},customer ${i % 97},${(i * 7919) % 10007},2026-05-${String((i % 28) + 1).padStart(2, '0')}\r\n`;
    lines.push(line);
    length += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, bytes);
}

async function collect(output: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of output) parts.push(part);
  return Buffer.concat(parts);
}

/** Writes `entries` into one archive and returns its bytes and each entry's facts. */
async function writeZip(entries: TestEntry[], options?: ZipWriterOptions): Promise<{ zip: Buffer; facts: ZipEntryFacts[] }> {
  const writer = new ZipWriter(options);
  const zip = collect(writer.output);
  const facts: ZipEntryFacts[] = [];
  for (const entry of entries) {
    const source = entry.chunkBytes ? chunksOf(entry.data, entry.chunkBytes) : [entry.data];
    facts.push(await writer.addEntry(entry.name, source, { mtime: MTIME, level: entry.level }));
  }
  await writer.finish();
  return { zip: await zip, facts };
}

interface ReadEntry {
  data: Buffer;
  crc32: number;
  compressedSize: number;
  method: number;
  offset: number;
  mtime: Date;
}

/** Every entry of `zip` as yauzl reads it (sizes and CRC checked by yauzl on the way). */
async function readWithYauzl(zip: Buffer): Promise<Map<string, ReadEntry>> {
  const file = await yauzl.fromBufferPromise(zip, { strictFileNames: true, validateEntrySizes: true });
  const entries = new Map<string, ReadEntry>();
  try {
    for await (const entry of file.eachEntry()) {
      const data = await collect((await file.openReadStreamPromise(entry)) as AsyncIterable<Buffer>);
      entries.set(entry.fileName, {
        data,
        crc32: entry.crc32,
        compressedSize: entry.compressedSize,
        method: entry.compressionMethod,
        offset: entry.relativeOffsetOfLocalHeader,
        mtime: entry.getLastModDate(),
      });
    }
  } finally {
    file.close();
  }
  return entries;
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'havre-zip-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function saved(zip: Buffer, name: string): Promise<string> {
  const file = path.join(tmp, name);
  await writeFile(file, zip);
  return file;
}

const PYTHON_CHECK = `
import hashlib, json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    bad = z.testzip()
    entries = {i.filename: [i.file_size, i.CRC, i.compress_type, hashlib.sha256(z.read(i)).hexdigest()] for i in z.infolist()}
print(json.dumps({"bad": bad, "entries": entries}))
`;

/** Python's zipfile: testzip() finds no bad entry, and every entry has the bytes written. */
async function expectPythonReads(file: string, entries: TestEntry[]): Promise<void> {
  const { stdout } = await run('python3', ['-c', PYTHON_CHECK, file]);
  const answer = JSON.parse(stdout) as { bad: string | null; entries: Record<string, [number, number, number, string]> };
  expect(answer.bad).toBeNull();
  expect(answer.entries).toEqual(Object.fromEntries(entries.map((e) => [e.name, [e.data.length, zlib.crc32(e.data), e.level === 0 ? 0 : 8, sha256(e.data)]])));
}

function expectSameEntries(read: Map<string, ReadEntry>, entries: TestEntry[], facts: ZipEntryFacts[]): void {
  expect([...read.keys()]).toEqual(entries.map((e) => e.name));
  entries.forEach((entry, i) => {
    const got = read.get(entry.name)!;
    expect(got.data.equals(entry.data), entry.name).toBe(true);
    expect(got.crc32).toBe(zlib.crc32(entry.data));
    expect(got.method).toBe(entry.level === 0 ? 0 : 8);
    expect(facts[i]).toEqual({ name: entry.name, size: entry.data.length, crc32: got.crc32, compressedSize: got.compressedSize });
  });
}

const text = csvText(1024 * 1024);
const random = randomBytes(1024 * 1024 + 123);
const MIXED: TestEntry[] = [
  { name: 'empty.txt', data: Buffer.alloc(0), level: 1 },
  { name: 'empty-stored.txt', data: Buffer.alloc(0), level: 0 },
  { name: 'small.txt', data: Buffer.from('hello, archive\n'), level: 6 },
  { name: 'csv/text.csv', data: text, level: 1, chunkBytes: 10_000 },
  { name: 'csv/random.bin', data: random, level: 9, chunkBytes: 200_000 },
  { name: 'attachments/stored.bin', data: random.subarray(0, 70_000), level: 0, chunkBytes: 4096 },
  { name: 'exact-blocks.csv', data: text.subarray(0, 3 * 64 * 1024), level: 1, chunkBytes: 64 * 1024 },
  { name: 'données/élève ☃.txt', data: Buffer.from('UTF-8 names\n'), level: 1 },
];

describe('ZipWriter', () => {
  it('writes entries that yauzl, Python and unzip read back byte for byte', async () => {
    const { zip, facts } = await writeZip(MIXED, { blockBytes: 64 * 1024 });
    expectSameEntries(await readWithYauzl(zip), MIXED, facts);
    const file = await saved(zip, 'mixed.zip');
    await expectPythonReads(file, MIXED);
    if (hasUnzip) await run('unzip', ['-tq', file]); // rejects on a non-zero exit
    expect(zip.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(false); // no ZIP64 end record needed
  });

  it.skipIf(!hasUnzip)('passes unzip -t', async () => {
    const { zip } = await writeZip(MIXED.slice(0, 4), { blockBytes: 64 * 1024 });
    const { stdout } = await run('unzip', ['-t', await saved(zip, 'unzip.zip')]);
    expect(stdout).toContain('No errors detected');
  });

  it('writes ZIP64 fields where sizes and offsets reach the threshold, and readers follow them', async () => {
    const entries: TestEntry[] = [
      { name: 'tiny.txt', data: Buffer.from('under the threshold'), level: 1 },
      { name: 'text.csv', data: text.subarray(0, 200_000), level: 1, chunkBytes: 5000 },
      { name: 'random.bin', data: random.subarray(0, 5000), level: 0 },
      { name: 'after.txt', data: Buffer.from('at a large offset'), level: 1 },
    ];
    const { zip, facts } = await writeZip(entries, { blockBytes: 16 * 1024, zip64Threshold: 1000 });
    const read = await readWithYauzl(zip);
    expectSameEntries(read, entries, facts);
    await expectPythonReads(await saved(zip, 'zip64.zip'), entries);
    if (hasUnzip) await run('unzip', ['-tq', path.join(tmp, 'zip64.zip')]);

    // The data descriptor after each entry: 8-byte sizes where a size reaches the threshold.
    for (const [name, entry] of read) {
      const at = entry.offset + 30 + Buffer.byteLength(name) + entry.compressedSize;
      expect(zip.readUInt32LE(at)).toBe(0x08074b50);
      const large = entry.data.length >= 1000 || entry.compressedSize >= 1000;
      if (large) expect([Number(zip.readBigUInt64LE(at + 8)), Number(zip.readBigUInt64LE(at + 16))]).toEqual([entry.compressedSize, entry.data.length]);
      else expect([zip.readUInt32LE(at + 8), zip.readUInt32LE(at + 12)]).toEqual([entry.compressedSize, entry.data.length]);
    }
    // Central records of the large entries hold markers and a ZIP64 extra field; the end has both records.
    const central = zip.lastIndexOf(Buffer.from('after.txt')) - 46;
    expect(zip.readUInt32LE(central)).toBe(0x02014b50);
    expect(zip.readUInt16LE(central + 6)).toBe(45); // version needed: after.txt sits beyond the threshold
    expect(zip.readUInt32LE(central + 42)).toBe(0xffffffff);
    expect(zip.readUInt16LE(central + 46 + 'after.txt'.length)).toBe(0x0001);
    const end = zip.length - 22;
    expect(zip.readUInt32LE(end)).toBe(0x06054b50);
    expect(zip.readUInt32LE(end - 20)).toBe(0x07064b50);
    expect(zip.readUInt32LE(end - 20 - 56)).toBe(0x06064b50);
    expect(zip.readUInt16LE(end + 10)).toBe(0xffff);
  });

  it('round-trips random entries, chunkings, block sizes and levels (property)', async () => {
    const entry = fc.record({
      chunks: fc.array(fc.oneof(fc.uint8Array({ maxLength: 3000 }), fc.constantFrom(new Uint8Array(5000).fill(97))), { maxLength: 6 }),
      level: fc.integer({ min: 0, max: 9 }),
    });
    const options = fc.record({ blockBytes: fc.integer({ min: 1, max: 4096 }), parallelBlocks: fc.integer({ min: 1, max: 5 }), deflater: fc.constantFrom('auto' as const, 'zlib' as const, 'igzip' as const) });
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 4 }), options, async (drawn, writerOptions) => {
        const entries = drawn.map((e, i) => ({ name: `dir/${i}.bin`, data: Buffer.concat(e.chunks), level: e.level }));
        const writer = new ZipWriter(writerOptions);
        const zip = collect(writer.output);
        const facts: ZipEntryFacts[] = [];
        for (const [i, e] of drawn.entries()) facts.push(await writer.addEntry(`dir/${i}.bin`, e.chunks, { mtime: MTIME, level: e.level }));
        await writer.finish();
        expectSameEntries(await readWithYauzl(await zip), entries, facts);
      }),
      { numRuns: 40 },
    );
  });

  it.each(['zlib', 'igzip'] as const)('compresses with %s, and the entry inflates as one deflate stream (zlib: its independent blocks)', async (deflater) => {
    const { zip, facts } = await writeZip([{ name: 'text.csv', data: text, level: 1, chunkBytes: 7777 }], { blockBytes: 64 * 1024, deflater });
    const [fact] = facts;
    expect(fact!.compressedSize).toBeLessThan(text.length / 3);
    const data = zip.subarray(30 + 'text.csv'.length, 30 + 'text.csv'.length + fact!.compressedSize);
    expect(zlib.inflateRawSync(data).equals(text)).toBe(true);
  });

  it('writes the modification time as a local DOS date, clamped to 1980', async () => {
    const writer = new ZipWriter();
    const zip = collect(writer.output);
    await writer.addEntry('now.txt', [Buffer.from('x')], { mtime: MTIME, level: 1 });
    await writer.addEntry('old.txt', [Buffer.from('y')], { mtime: new Date(1970, 0, 1), level: 1 });
    await writer.finish();
    const read = await readWithYauzl(await zip);
    expect(read.get('now.txt')!.mtime).toEqual(MTIME);
    expect(read.get('old.txt')!.mtime).toEqual(new Date(1980, 0, 1));
  });

  it('refuses unsafe entry names before writing anything', async () => {
    const writer = new ZipWriter();
    const zip = collect(writer.output);
    for (const name of ['', '/etc/passwd', 'C:/x', 'a\\b', '../up', 'a/../../b', 'dir/', 'x'.repeat(0x10000), 'é'.repeat(0x8000)]) {
      await expect(writer.addEntry(name, [], { mtime: MTIME, level: 1 }), JSON.stringify(name.slice(0, 20))).rejects.toThrow(/refused/);
    }
    await expect(writer.addEntry('ok', [], { mtime: MTIME, level: 10 })).rejects.toThrow(RangeError);
    await writer.addEntry('a/..b/ok.txt', [Buffer.from('fine')], { mtime: MTIME, level: 1 });
    await writer.finish();
    expect([...(await readWithYauzl(await zip)).keys()]).toEqual(['a/..b/ok.txt']);
  });

  it('fails the entry when its source throws, and refuses to go on', async () => {
    const writer = new ZipWriter({ blockBytes: 1024 });
    const output = collect(writer.output);
    async function* failing() {
      yield randomBytes(5000);
      throw new Error('the COPY failed');
    }
    await expect(writer.addEntry('bad.csv', failing(), { mtime: MTIME, level: 1 })).rejects.toThrow('the COPY failed');
    await expect(writer.addEntry('next.csv', [], { mtime: MTIME, level: 1 })).rejects.toThrow(/has failed/);
    writer.abort(new Error('export aborted'));
    await expect(output).rejects.toThrow('export aborted');
  });

  it('refuses a second entry while one is being written', async () => {
    const writer = new ZipWriter();
    const zip = collect(writer.output);
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    async function* slow() {
      yield Buffer.from('first ');
      await released;
      yield Buffer.from('entry');
    }
    const first = writer.addEntry('first.txt', slow(), { mtime: MTIME, level: 1 });
    await expect(writer.addEntry('second.txt', [], { mtime: MTIME, level: 1 })).rejects.toThrow(/another entry is still being written/);
    await expect(writer.finish()).rejects.toThrow(/another entry/);
    release();
    await first;
    await writer.finish();
    expect((await readWithYauzl(await zip)).get('first.txt')!.data.toString()).toBe('first entry');
  });

  it('fails the entry when the consumer destroys the output', async () => {
    const writer = new ZipWriter({ blockBytes: 1024 });
    writer.output.on('error', () => {}); // the consumer's own pipeline would see it
    const entry = writer.addEntry('big.bin', chunksOf(randomBytes(1024 * 1024), 1024), { mtime: MTIME, level: 1 });
    await sleep(20);
    writer.output.destroy(new Error('disk full'));
    await expect(entry).rejects.toThrow('disk full');
  });

  it.each([1, 0])('holds the source back while the output is not read (level %i, zlib blocks)', async (level) => {
    const blockBytes = 16 * 1024;
    const writer = new ZipWriter({ blockBytes, parallelBlocks: 2, deflater: 'zlib' });
    const data = randomBytes(2 * 1024 * 1024);
    let yielded = 0;
    function* counted() {
      for (const chunk of chunksOf(data, 4096)) {
        yielded += chunk.length;
        yield chunk;
      }
    }
    let resolved = false;
    const entry = writer.addEntry('random.bin', counted(), { mtime: MTIME, level }).then((facts) => {
      resolved = true;
      return facts;
    });
    // Wait until the writer stops making progress (it waits for the reader), then look at memory.
    for (let last = -1; yielded !== last; ) {
      last = yielded;
      await sleep(50);
    }
    expect(resolved).toBe(false);
    // Output's high-water mark (64 KiB) + a block pushed over it + blocks in flight + the one filling.
    expect(yielded).toBeLessThan(64 * 1024 + (2 + 2) * blockBytes + 4096);
    expect(writer.output.readableLength).toBeLessThan(64 * 1024 + 2 * blockBytes);

    const zip = collect(writer.output);
    const facts = await entry;
    await writer.finish();
    expectSameEntries(await readWithYauzl(await zip), [{ name: 'random.bin', data, level }], [facts]);
  });
});
