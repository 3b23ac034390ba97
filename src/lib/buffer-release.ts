/**
 * Prompt release of the Buffers that a long byte stream leaves behind (backups, restores,
 * exports: gigabytes through a process that should stay within ~150 MB).
 *
 * Why: V8 returns a Buffer's memory only when it collects the Buffer object, and Buffer objects
 * are tiny, so nothing in the JavaScript heap calls for a collection; V8 collects for the memory
 * *outside* its heap only once 64 MiB more of it has been allocated than at the last collection.
 * A stream of fresh Buffers (socket reads, cipher output, inflated data) therefore keeps up to
 * 64 MiB of dead ones resident, and each of those late collections is a full mark-compact of the
 * whole heap (tens of ms). A young-generation collection (a scavenge: well under a millisecond,
 * it only visits live young objects) every few MiB frees them as soon as they die.
 *
 * V8's `gc()` is not exposed by default; it is turned on here once with `v8.setFlagsFromString`
 * and read from a fresh context (the flag applies to contexts created after it). Where that is
 * refused, `note` does nothing and V8 keeps its own pace: nothing but memory depends on it.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

let collect: Collect | null | undefined;

function collector(): Collect | null {
  if (collect === undefined) {
    try {
      const existing = (globalThis as { gc?: Collect }).gc;
      if (existing) collect = existing;
      else {
        v8.setFlagsFromString('--expose-gc');
        collect = (vm.runInNewContext('gc') as Collect | undefined) ?? null;
      }
    } catch {
      collect = null;
    }
  }
  return collect;
}

/** Bytes of fresh Buffers between two young-generation collections. */
export const RELEASE_EVERY_BYTES = 8 * 1024 * 1024;

/**
 * A counter for one stream: call `note(n)` with the size of every Buffer it allocates (or passes
 * on); every RELEASE_EVERY_BYTES it runs a young-generation collection.
 */
export function bufferReleaser(everyBytes = RELEASE_EVERY_BYTES): { note(bytes: number): void } {
  let pending = 0;
  return {
    note(bytes) {
      pending += bytes;
      if (pending < everyBytes) return;
      pending = 0;
      collector()?.({ type: 'minor' });
    },
  };
}
