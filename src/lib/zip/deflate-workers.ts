/**
 * Raw deflate of whole blocks on worker threads: each block is handed to a worker (its memory
 * transferred, not copied), compressed there with `zlib.deflateRawSync`, and handed back.
 *
 * Why not zlib's async API: it runs the compression on the thread pool, but keeps a stream's
 * JavaScript machinery on the main thread for every call — about 2 s of the main thread for the
 * ~900 blocks of a 1 GB export (bench/results/export.md), time the main thread needed for reading
 * PostgreSQL's COPY stream. A worker does the whole call on its own thread.
 *
 * The workers start on first use; a worker keeps the process alive only while it has blocks to
 * compress (ref'd then, unref'd when idle). A worker that fails or exits fails the blocks it had and
 * is replaced on the next call.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
// V8's gc(), for a young-generation collection after each block (as src/lib/buffer-release.ts does).
const collect = globalThis.gc ?? (require('node:v8').setFlagsFromString('--expose-gc'), require('node:vm').runInNewContext('gc'));
parentPort.on('message', ({ id, block, level, last }) => {
  try {
    const out = zlib.deflateRawSync(block, { level, finishFlush: last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH });
    // The output's own memory, whole, so that it can be transferred.
    const bytes = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : Uint8Array.prototype.slice.call(out);
    parentPort.postMessage({ id, out: bytes }, [bytes.buffer]);
    // The block that came in is garbage now: freed at once, not 64 MiB later (src/lib/buffer-release.ts).
    collect({ type: 'minor' });
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) });
  }
});
`;

interface Job {
  worker: Worker;
  resolve(out: Buffer): void;
  reject(err: Error): void;
}

const WORKERS = Math.max(2, Math.min(4, os.availableParallelism()));
const pool: (Worker | undefined)[] = [];
const jobs = new Map<number, Job>();
/** Blocks given to each worker and not yet back. */
const busy = new Map<Worker, number>();
let nextId = 0;

/** Counts a block given to (+1) or back from (-1) `worker`; it is ref'd only while it has some. */
function track(worker: Worker, delta: 1 | -1): void {
  const n = (busy.get(worker) ?? 0) + delta;
  busy.set(worker, n);
  if (delta === 1 && n === 1) worker.ref();
  if (n === 0) worker.unref();
}

function failJobsOf(worker: Worker, err: Error): void {
  for (const [id, job] of jobs) {
    if (job.worker !== worker) continue;
    jobs.delete(id);
    job.reject(err);
  }
  busy.delete(worker);
  worker.unref();
  const slot = pool.indexOf(worker);
  if (slot >= 0) pool[slot] = undefined;
}

function start(): Worker {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.on('message', ({ id, out, error }: { id: number; out?: Uint8Array; error?: string }) => {
    const job = jobs.get(id);
    if (!job) return;
    jobs.delete(id);
    track(worker, -1);
    if (out) job.resolve(Buffer.from(out.buffer, out.byteOffset, out.byteLength));
    else job.reject(new Error(`deflate failed: ${error}`));
  });
  worker.on('error', (err) => failJobsOf(worker, err));
  worker.on('exit', (code) => failJobsOf(worker, new Error(`a deflate worker exited (code ${code})`)));
  // After the listeners: adding a 'message' listener refs the worker again.
  worker.unref();
  return worker;
}

/**
 * `block` deflated raw at `level`, ending with Z_FINISH when `last`, else with a sync flush
 * (block-deflate.ts). `block` is copied once into memory of its own, which is transferred.
 */
export function deflateBlock(block: Buffer, level: number, last: boolean): Promise<Buffer> {
  const id = nextId++;
  const slot = id % WORKERS;
  const worker = (pool[slot] ??= start());
  const own = new Uint8Array(block.length);
  own.set(block);
  return new Promise<Buffer>((resolve, reject) => {
    jobs.set(id, { worker, resolve, reject });
    track(worker, 1);
    worker.postMessage({ id, block: own, level, last }, [own.buffer]);
  });
}
