/**
 * An S3 location whose driver (and the AWS SDK behind it, ~35 MB of memory) is loaded on first use:
 * a Havre with only filesystem locations — the embedded default — never loads the SDK at all.
 */
import type { Clock } from '../clock.ts';
import type { BackupStore, LockedObject } from './backup-store.ts';
import type { S3Settings } from './s3-store.ts';

export function createLazyS3Store(options: { name: string; bucket: string; prefix?: string; clock: Clock; settings: S3Settings }): BackupStore {
  let loading: Promise<BackupStore> | undefined;
  const real = () =>
    (loading ??= import('./s3-store.ts').then((m) =>
      m.createS3Store({ name: options.name, bucket: options.bucket, ...(options.prefix && { prefix: options.prefix }), clock: options.clock, client: m.s3ClientFrom(options.settings) }),
    ));
  return {
    name: options.name,
    driver: 's3',
    check: async () => (await real()).check(),
    put: async (key, source, o) => (await real()).put(key, source, o),
    get: async (key, o) => (await real()).get(key, o),
    digest: async (key) => (await real()).digest(key),
    stat: async (key) => (await real()).stat(key),
    extendRetention: async (key, until) => (await real()).extendRetention(key, until),
    delete: async (key) => (await real()).delete(key),
    async *list(prefix): AsyncGenerator<LockedObject> {
      yield* (await real()).list(prefix);
    },
    putMutable: async (key, body) => (await real()).putMutable(key, body),
    getMutable: async (key) => (await real()).getMutable(key),
    deleteMutable: async (key) => (await real()).deleteMutable(key),
  };
}
