/**
 * One stream written to several locations at once (BKP-3), hashed once on the way.
 *
 * Each location gets its own PassThrough; the source advances only as fast as the slowest live
 * location (constant memory). A location that fails is dropped and the others go on — its
 * failure is reported in `results`, and the backup stays incomplete until a repair copies the
 * part there. A failing source aborts every write (each driver then discards what it had).
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable } from 'node:stream';

export interface FanOutResult {
  sha256: string;
  size: number;
  results: PromiseSettledResult<unknown>[];
}

interface Lane {
  pt: PassThrough;
  dead: boolean;
  result: Promise<unknown>;
}

export async function fanOut(source: AsyncIterable<Uint8Array>, sinks: readonly ((input: Readable) => Promise<unknown>)[]): Promise<FanOutResult> {
  const hash = createHash('sha256');
  let size = 0;
  const lanes: Lane[] = sinks.map((sink) => {
    const pt = new PassThrough({ highWaterMark: 256 * 1024 });
    // A failure reaches the caller through `result` (the sink's promise) or the rethrown source
    // error; an 'error' event on this private stream must not become an uncaught exception.
    pt.on('error', () => {});
    const lane: Lane = { pt, dead: false, result: Promise.resolve() };
    lane.result = Promise.resolve()
      .then(() => sink(pt))
      .catch((err: unknown) => {
        lane.dead = true;
        pt.destroy();
        throw err;
      });
    lane.result.catch(() => {});
    return lane;
  });
  const drained = (lane: Lane) =>
    new Promise<void>((resolve) => {
      const done = () => {
        lane.pt.off('drain', done);
        resolve();
      };
      lane.pt.once('drain', done);
      lane.result.then(done, done);
    });

  try {
    for await (const chunk of source) {
      hash.update(chunk);
      size += chunk.length;
      const waits: Promise<void>[] = [];
      for (const lane of lanes) {
        if (!lane.dead && !lane.pt.write(chunk)) waits.push(drained(lane));
      }
      await Promise.all(waits);
      if (lanes.every((l) => l.dead)) break;
    }
  } catch (err) {
    for (const lane of lanes) lane.pt.destroy(err as Error);
    await Promise.allSettled(lanes.map((l) => l.result));
    throw err;
  }
  for (const lane of lanes) if (!lane.dead) lane.pt.end();
  const results = await Promise.allSettled(lanes.map((l) => l.result));
  return { sha256: hash.digest('hex'), size, results };
}

/** A pass-through that hashes what flows through it; `digest()` once it has ended. */
export function hashing(): Transform & { digest(): string } {
  const hash = createHash('sha256');
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  }) as Transform & { digest(): string };
  t.digest = () => hash.digest('hex');
  return t;
}
