import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BackupIntegrityError, decryptStream, encryptStream, HEADER_BYTES, TAG_BYTES } from './backup-crypto.ts';

const CHUNK = 4096;

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** Feeds `bytes` in pieces of random sizes (streams never arrive in chunk-sized writes). */
function pieces(bytes: Buffer): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; ) {
    const n = 1 + Math.floor(Math.random() * 3000);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  return Readable.from(out);
}

const key = randomBytes(32);
const keyId = randomUUID();
const encrypt = (plain: Buffer) => collect(pieces(plain).pipe(encryptStream(key, keyId, CHUNK)));
const decrypt = (sealed: Buffer, k = key) => collect(pieces(sealed).pipe(decryptStream(() => k)));

describe('backup encryption format', () => {
  it('[BKP-6] round-trips every size around the chunk boundaries, in pieces of any size', async () => {
    for (const size of [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17]) {
      const plain = randomBytes(size);
      const sealed = await encrypt(plain);
      expect(sealed.length).toBe(HEADER_BYTES + size + TAG_BYTES * Math.max(1, Math.ceil(size / CHUNK)));
      expect(await decrypt(sealed)).toEqual(plain);
    }
  });

  it('[BKP-6] a flipped bit, a truncated file, appended bytes, swapped chunks or a wrong key are refused', async () => {
    const plain = randomBytes(3 * CHUNK + 100);
    const sealed = await encrypt(plain);
    const flipped = Buffer.from(sealed);
    flipped[HEADER_BYTES + CHUNK + 5]! ^= 1;
    await expect(decrypt(flipped)).rejects.toBeInstanceOf(BackupIntegrityError);
    const block = CHUNK + TAG_BYTES;
    await expect(decrypt(sealed.subarray(0, HEADER_BYTES + 2 * block))).rejects.toBeInstanceOf(BackupIntegrityError);
    await expect(decrypt(Buffer.concat([sealed, Buffer.from('x')]))).rejects.toBeInstanceOf(BackupIntegrityError);
    const swapped = Buffer.concat([sealed.subarray(0, HEADER_BYTES), sealed.subarray(HEADER_BYTES + block, HEADER_BYTES + 2 * block), sealed.subarray(HEADER_BYTES, HEADER_BYTES + block), sealed.subarray(HEADER_BYTES + 2 * block)]);
    await expect(decrypt(swapped)).rejects.toBeInstanceOf(BackupIntegrityError);
    await expect(decrypt(sealed, randomBytes(32))).rejects.toBeInstanceOf(BackupIntegrityError);
    const header = Buffer.from(sealed);
    header[20]! ^= 1; // the header is authenticated with every chunk
    await expect(decrypt(header)).rejects.toBeInstanceOf(BackupIntegrityError);
  });
});
