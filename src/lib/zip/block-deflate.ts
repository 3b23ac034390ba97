/**
 * Deflate on every core: the input is cut into blocks, each compressed on its own on a worker
 * thread (deflate-workers.ts), several at once, and their outputs are passed on in order. Every
 * block but the last ends with a sync flush, which leaves it byte-aligned and without references
 * to earlier blocks, so the outputs concatenated form ONE valid raw deflate stream (what
 * `pigz --independent` does). At 1 MiB blocks the size is within a fraction of a
 * percent of one stream's.
 *
 * Why: one zlib stream compresses 16 KiB at a time on one thread; an export of a 1 GB tenant
 * spent seconds waiting on it (bench/results/export.md).
 */
import zlib from 'node:zlib';
import { deflateBlock } from './deflate-workers.ts';

const noop = () => {};

export interface BlockDeflateOptions {
  /** zlib level, 0 (stored blocks) to 9. */
  level: number;
  /** Bytes per block (default 1 MiB). */
  blockBytes?: number;
  /** Blocks compressed at once (default 4): memory is about twice this many blocks. */
  parallelBlocks?: number;
}

/** What went in, updated as the input is read (for the zip's records). */
export interface DeflateFacts {
  crc32: number;
  size: number;
}

/** A Buffer over the same memory (no copy); strings are refused rather than guessed at. */
export function asBuffer(chunk: Uint8Array): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (!(chunk instanceof Uint8Array)) throw new TypeError(`deflate sources must yield bytes (Uint8Array), not ${typeof chunk}`);
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/**
 * The raw deflate stream of `source`, compressed block by block in parallel (see the file
 * comment). `facts` gets the CRC-32 and size of the input as it is read. Chunks of `source` are
 * not copied until a block is cut: do not change them after yielding them. A full block is sent
 * off only once a further byte arrives, so that the last block, whatever its size, is the one
 * compressed with Z_FINISH (an empty input gives one empty final block).
 */
export async function* blockDeflate(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: BlockDeflateOptions, facts: DeflateFacts = { crc32: 0, size: 0 }): AsyncGenerator<Buffer> {
  const { level } = options;
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new RangeError(`deflate level must be an integer from 0 to 9, not ${level}`);
  const blockBytes = options.blockBytes ?? 1024 * 1024;
  const parallel = options.parallelBlocks ?? 4;
  const pending: Promise<Buffer>[] = [];
  const send = (block: Buffer, last: boolean) => {
    const compressed = deflateBlock(block, level, last);
    compressed.catch(noop); // awaited in order below; this only keeps a failure from being "unhandled" meanwhile
    pending.push(compressed);
  };

  // The bytes not sent off yet, at most one block (and one chunk) of them; joined only to cut.
  let parts: Buffer[] = [];
  let partBytes = 0;
  for await (const raw of source) {
    const chunk = asBuffer(raw);
    if (chunk.length === 0) continue;
    facts.crc32 = zlib.crc32(chunk, facts.crc32);
    facts.size += chunk.length;
    parts.push(chunk);
    partBytes += chunk.length;
    if (partBytes <= blockBytes) continue;
    let rest = parts.length === 1 ? chunk : Buffer.concat(parts, partBytes);
    while (rest.length > blockBytes) {
      send(rest.subarray(0, blockBytes), false);
      rest = rest.subarray(blockBytes);
      while (pending.length >= parallel) yield await pending.shift()!;
    }
    parts = [rest];
    partBytes = rest.length;
  }
  send(parts.length === 1 ? parts[0]! : Buffer.concat(parts, partBytes), true);
  while (pending.length > 0) yield await pending.shift()!;
}
