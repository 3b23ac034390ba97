/**
 * A streaming ZIP writer fast enough for the tenant export (~1 GiB of CSV at close to the speed of
 * PostgreSQL's COPY on two cores), where yazl was the bottleneck: it computes CRC-32 in JavaScript
 * and deflates each entry through one zlib stream, 16 KiB at a time, one core at a time.
 *
 * Here the CRC is Node's native `zlib.crc32`, and a level-1 entry is deflated by ISA-L's `igzip`
 * in a child process when it is installed (igzip-deflate.ts: several times zlib's speed); other
 * entries, or all of them without igzip, in independent blocks of `blockBytes` on worker threads,
 * `parallelBlocks` at a time (block-deflate.ts: one valid deflate stream, well under 1% larger
 * than a single stream's at 1 MiB blocks).
 *
 * The archive comes out of `output`, a Readable whose backpressure holds the writer back: at most
 * `parallelBlocks` blocks are compressed or waiting to be written, so memory stays at about
 * `parallelBlocks × blockBytes` (twice that at worst, input and output) whatever the archive's size.
 * Record layouts: zip-format.ts.
 */
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { asBuffer, blockDeflate } from './block-deflate.ts';
import { igzipDeflate } from './igzip-deflate.ts';
import { igzipAvailable } from '../igzip.ts';
import { centralHeader, dataDescriptor, dosDateTime, endRecords, entryName, localHeader, METHOD_DEFLATE, METHOD_STORED, ZIP64_LIMIT, type WrittenEntry } from './zip-format.ts';


/** What an entry turned out to be once written: the export's manifest and checks use these. */
export interface ZipEntryFacts {
  name: string;
  /** Uncompressed bytes. */
  size: number;
  /** Bytes of the entry's data in the archive (equal to `size` when stored). */
  compressedSize: number;
  /** CRC-32 of the uncompressed bytes, unsigned. */
  crc32: number;
}

export interface ZipWriterOptions {
  /** Uncompressed bytes per independently deflated block; default 1 MiB. */
  blockBytes?: number;
  /** Blocks compressed (or waiting to be written) at once; default 4. */
  parallelBlocks?: number;
  /** For tests only: sizes and offsets from this value on use ZIP64 fields (default 0xFFFFFFFF). */
  zip64Threshold?: number;
  /**
   * Who deflates: `igzip` (ISA-L's command, igzip-deflate.ts: a child process per entry, several
   * times faster than zlib at level 1) or `zlib` (blocks on worker threads). Default: igzip for
   * level-1 entries when it is installed, zlib otherwise and for the other levels.
   */
  deflater?: 'auto' | 'zlib' | 'igzip';
}

export interface ZipEntryOptions {
  /** Modification time, written as a local DOS date and time. */
  mtime: Date;
  /** 0: stored as is; 1 (fastest) to 9 (smallest): deflated. */
  level: number;
}

/**
 * Writes one ZIP archive into `output`, entry after entry; see the file's comment for how. Use:
 * consume `output` (e.g. `pipeline(writer.output, file)`), `await addEntry` for each entry in turn,
 * `await finish()`, and on any failure `abort(err)`.
 */
export class ZipWriter {
  /** The archive's bytes. Destroying it (a failed pipeline) fails the entry being written. */
  readonly output: Readable;
  readonly #blockBytes: number;
  readonly #parallelBlocks: number;
  readonly #zip64Threshold: number;
  readonly #deflater: 'auto' | 'zlib' | 'igzip';
  readonly #entries: WrittenEntry[] = [];
  /** Bytes pushed into `output` so far: the offset of the next record. */
  #offset = 0;
  #busy = false;
  #finished = false;
  /** Why the archive cannot go on: `output` was destroyed, or an entry failed half-way. */
  #failure: Error | null = null;
  /** Resolved when `output` asks for more after a push over its high-water mark. */
  #drained: { resolve(): void; reject(err: Error): void } | null = null;

  /** Option values are checked here, so a mistake shows at once rather than mid-archive. */
  constructor(options: ZipWriterOptions = {}) {
    this.#blockBytes = positiveInteger('blockBytes', options.blockBytes ?? 1024 * 1024);
    this.#parallelBlocks = positiveInteger('parallelBlocks', options.parallelBlocks ?? 4);
    this.#zip64Threshold = positiveInteger('zip64Threshold', options.zip64Threshold ?? ZIP64_LIMIT);
    this.#deflater = options.deflater ?? 'auto';
    if (!['auto', 'zlib', 'igzip'].includes(this.#deflater)) throw new RangeError(`ZipWriter: deflater must be auto, zlib or igzip, not ${String(this.#deflater)}`);
    this.output = new Readable({
      read: () => this.#wake(),
      destroy: (err, callback) => {
        this.#fail(err ?? new Error('the ZIP output was closed before the archive was finished'));
        callback(err);
      },
    });
  }

  /**
   * Adds one entry with the bytes of `source` (chunks are not copied: do not change them after
   * yielding them) and resolves, with its facts, once all of it has been pushed into `output`.
   * Entries go one after another: call again only once this has resolved. If `source` throws, this
   * rejects and the archive is unusable: call `abort`.
   */
  async addEntry(name: string, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: ZipEntryOptions): Promise<ZipEntryFacts> {
    this.#checkReady('addEntry');
    const { level } = options;
    if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`ZIP entry level must be an integer from 0 to 9, not ${level}`);
    const entry: WrittenEntry = {
      name: entryName(name),
      method: level === 0 ? METHOD_STORED : METHOD_DEFLATE,
      ...dosDateTime(options.mtime),
      crc32: 0,
      size: 0,
      compressedSize: 0,
      localHeaderOffset: this.#offset,
    };
    this.#busy = true;
    try {
      await this.#write(localHeader(entry));
      if (level === 0) await this.#writeStored(entry, source);
      else await this.#writeDeflated(entry, source, level);
      await this.#write(dataDescriptor(entry, this.#zip64Threshold));
      this.#entries.push(entry);
      return { name, size: entry.size, compressedSize: entry.compressedSize, crc32: entry.crc32 };
    } catch (err) {
      // Half an entry is in the output: nothing more can be added after it.
      this.#failure ??= new Error(`the ZIP entry ${name} failed`, { cause: err });
      throw err;
    } finally {
      this.#busy = false;
    }
  }

  /** Writes the central directory and the end records, and ends `output`. */
  async finish(): Promise<void> {
    this.#checkReady('finish');
    this.#finished = true;
    const directoryOffset = this.#offset;
    for (const entry of this.#entries) await this.#write(centralHeader(entry, this.#zip64Threshold));
    await this.#write(endRecords(this.#entries.length, directoryOffset, this.#offset - directoryOffset, this.#zip64Threshold));
    this.output.push(null);
  }

  /** Gives the archive up: destroys `output` with `err`, and fails the entry being written. */
  abort(err: Error): void {
    this.#fail(err);
    this.output.destroy(err);
  }

  #checkReady(call: string): void {
    if (this.#failure) throw new Error(`ZipWriter.${call}: the archive has failed`, { cause: this.#failure });
    if (this.#busy) throw new Error(`ZipWriter.${call}: another entry is still being written; await addEntry before the next call`);
    if (this.#finished) throw new Error(`ZipWriter.${call}: the archive is already finished`);
  }

  async #writeStored(entry: WrittenEntry, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<void> {
    for await (const raw of source) {
      const chunk = asBuffer(raw);
      if (chunk.length === 0) continue;
      entry.crc32 = zlib.crc32(chunk, entry.crc32);
      entry.size += chunk.length;
      await this.#write(chunk);
    }
    entry.compressedSize = entry.size;
  }

  /** Deflates `source` with igzip or in parallel zlib blocks (see `deflater`), writing the output in order. */
  async #writeDeflated(entry: WrittenEntry, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, level: number): Promise<void> {
    const igzip = this.#deflater === 'igzip' || (this.#deflater === 'auto' && level === 1 && igzipAvailable());
    const outputs = igzip ? igzipDeflate(source, level, entry) : blockDeflate(source, { level, blockBytes: this.#blockBytes, parallelBlocks: this.#parallelBlocks }, entry);
    for await (const output of outputs) {
      entry.compressedSize += output.length;
      await this.#write(output);
    }
  }

  /** Pushes `chunk` into `output`, and waits while `output` holds more than its high-water mark. */
  async #write(chunk: Buffer): Promise<void> {
    if (this.#failure) throw this.#failure;
    this.#offset += chunk.length;
    if (this.output.push(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      this.#drained = { resolve, reject };
    });
  }

  #wake(): void {
    const drained = this.#drained;
    this.#drained = null;
    drained?.resolve();
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const drained = this.#drained;
    this.#drained = null;
    drained?.reject(this.#failure);
  }
}

function positiveInteger(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`ZipWriter: ${option} must be a positive integer, not ${value}`);
  return value;
}
