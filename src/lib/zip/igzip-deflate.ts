/**
 * Deflate through Intel ISA-L's `igzip` (Debian package `isal`), a child process per stream: at
 * level 1 it compresses CSV about 4.5 times faster than zlib's level 1 on this machine, and a
 * little smaller (bench/results/export.md). On two cores zlib was what kept the export of a 1 GB
 * tenant from keeping up with PostgreSQL's COPY; ISA-L has no Node binding, and its command-line
 * tool streams stdin to stdout, so no native code is built.
 *
 * igzip writes gzip: a header, ONE raw deflate stream, and a trailer (CRC-32 and size of the
 * input). What a zip entry (or any raw deflate user) wants is the middle: the header is parsed and
 * dropped, the last 8 bytes are held back and checked against the CRC-32 and size computed here of
 * what was sent in, so a damaged or truncated output throws instead of becoming an entry.
 *
 * When `igzip` is not installed, callers fall back to zlib (`igzipAvailable()`, src/lib/igzip.ts).
 */
import zlib from 'node:zlib';
import { asBuffer, type DeflateFacts } from './block-deflate.ts';
import { spawnIgzip } from '../igzip.ts';

const FEXTRA = 4;
const FNAME = 8;
const FCOMMENT = 16;
const FHCRC = 2;

/** Length of the gzip header at the start of `bytes`, or -1 if `bytes` does not hold all of it yet. */
export function gzipHeaderLength(bytes: Buffer): number {
  if (bytes.length < 10) return -1;
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b || bytes[2] !== 8) throw new Error('igzip wrote something that is not a gzip deflate stream');
  const flags = bytes[3]!;
  let at = 10;
  if (flags & FEXTRA) {
    if (bytes.length < at + 2) return -1;
    at += 2 + bytes.readUInt16LE(at);
  }
  for (const flag of [FNAME, FCOMMENT]) {
    if (!(flags & flag)) continue;
    const end = bytes.indexOf(0, at);
    if (end < 0) return -1;
    at = end + 1;
  }
  if (flags & FHCRC) at += 2;
  return bytes.length >= at ? at : -1;
}

/**
 * The raw deflate stream of `source`, compressed by an `igzip` child process at `level` (zlib-style,
 * see `isalLevel`). `facts` gets the CRC-32 and size of the input as it is read. Resolves the last
 * chunk only after igzip exited cleanly and its trailer matched; if the consumer stops early or
 * anything fails, the child is killed.
 */
export async function* igzipDeflate(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, level: number, facts: DeflateFacts = { crc32: 0, size: 0 }): AsyncGenerator<Buffer> {
  const { child, done } = spawnIgzip(level);
  const stdin = child.stdin!;
  const ended = done.catch(() => {});
  stdin.on('error', () => {}); // EPIPE when igzip dies: its exit status (done) tells why

  let feedError: unknown = null;
  const feed = (async () => {
    try {
      for await (const raw of source) {
        const chunk = asBuffer(raw);
        if (chunk.length === 0) continue;
        facts.crc32 = zlib.crc32(chunk, facts.crc32);
        facts.size += chunk.length;
        // Not events.once: it would reject on stdin's EPIPE when igzip dies, and the exit status
        // (checked below) says why better than EPIPE does.
        if (!stdin.write(chunk)) await Promise.race([new Promise((resolve) => stdin.once('drain', resolve)), ended]);
        if (child.exitCode !== null || child.signalCode !== null) break;
      }
      stdin.end();
    } catch (err) {
      feedError = err;
      child.kill('SIGKILL');
    }
  })();

  let header: Buffer | null = Buffer.alloc(0);
  /** The last 8 bytes seen so far (the trailer, once igzip is done); all before them is deflate data. */
  let tail: Buffer = Buffer.alloc(0);
  let complete = false;
  try {
    for await (const raw of child.stdout! as AsyncIterable<Buffer>) {
      let chunk = raw;
      if (header) {
        header = Buffer.concat([header, chunk]);
        const length = gzipHeaderLength(header);
        if (length < 0) continue;
        chunk = header.subarray(length);
        header = null;
      }
      if (chunk.length < 8) {
        // Rare (pipes deliver far more): join the few bytes to the held ones.
        const joined = Buffer.concat([tail, chunk]);
        if (joined.length > 8) yield joined.subarray(0, joined.length - 8);
        tail = joined.subarray(Math.max(0, joined.length - 8));
        continue;
      }
      // The held bytes were data after all; this chunk's last 8 are held instead (no copy of the chunk).
      if (tail.length > 0) yield tail;
      yield chunk.subarray(0, chunk.length - 8);
      tail = Buffer.from(chunk.subarray(chunk.length - 8));
    }
    await feed;
    if (feedError) throw feedError;
    await done;
    if (header || tail.length !== 8) throw new Error('igzip ended its output before the gzip trailer');
    const crc = tail.readUInt32LE(0);
    const size = tail.readUInt32LE(4);
    if (crc !== facts.crc32 >>> 0 || size !== facts.size % 2 ** 32) {
      throw new Error(`igzip's output does not match its input (CRC-32 ${crc.toString(16)} for ${facts.crc32.toString(16)}, size mod 2^32 ${size} for ${facts.size % 2 ** 32})`);
    }
    complete = true;
  } finally {
    if (!complete) {
      child.kill('SIGKILL');
      await feed;
    }
  }
}
