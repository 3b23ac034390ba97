/**
 * The encrypted backup file format (BKP-6), documented for operators in docs/BACKUPS.md.
 *
 * A stored part is `header ‖ chunk₀ ‖ chunk₁ ‖ … ‖ chunkₙ`:
 *
 *   header (40 bytes) = "HAVREBK1" (8) ‖ chunk size, uint32 BE (4) ‖ nonce prefix (7, random)
 *                       ‖ reserved 0 (5) ‖ key id (16, the UUID of the tenant's backup key)
 *   chunkᵢ            = AES-256-GCM(data key, nonce = prefix ‖ i as uint32 BE ‖ final flag (1 byte),
 *                       aad = header, plaintext of exactly `chunk size` bytes — fewer only for the
 *                       final chunk) ‖ 16-byte tag
 *
 * Why chunked (the "STREAM" construction) rather than one GCM stream: a reader authenticates each
 * chunk before releasing a byte of it, so a flipped bit is caught at the chunk it hits and never
 * passed on to pg_restore; the counter in the nonce stops chunks from being reordered and the final
 * flag stops a truncated file from passing as whole. Memory stays at one chunk whatever the size.
 *
 * Keys: each tenant has one random 256-bit data key, wrapped (sealed) by the master key with the
 * context `backup-key:<tenantId>:<keyId>` and kept in the control plane and, as key escrow, in
 * every backup location under `keys/` (unlocked, so that crypto-shredding can delete it: BKP-7).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

export const MAGIC = Buffer.from('HAVREBK1', 'ascii');
export const HEADER_BYTES = 40;
export const TAG_BYTES = 16;
export const DEFAULT_CHUNK_BYTES = 256 * 1024;

/** Where the wrapped key of a tenant is sealed: binding tenant and key id stops a key being swapped. */
export function backupKeyContext(tenantId: string, keyId: string): string {
  return `backup-key:${tenantId}:${keyId}`;
}

/** A fresh 256-bit data key. */
export function newDataKey(): Buffer {
  return randomBytes(32);
}

function uuidBytes(id: string): Buffer {
  const hex = id.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error('key id must be a UUID');
  return Buffer.from(hex, 'hex');
}

function uuidOf(bytes: Buffer): string {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function nonceOf(prefix: Buffer, index: number, final: boolean): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0, 0, 7);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** Thrown when a stored part is not a Havre backup file, or fails authentication (tampered, truncated, wrong key). */
export class BackupIntegrityError extends Error {
  override name = 'BackupIntegrityError';
}

/** Reads the key id from a part's header (to find the key before decrypting). */
export function parseHeader(header: Buffer): { chunkBytes: number; noncePrefix: Buffer; keyId: string } {
  if (header.length < HEADER_BYTES || !header.subarray(0, 8).equals(MAGIC)) throw new BackupIntegrityError('not a Havre backup file (bad magic)');
  const chunkBytes = header.readUInt32BE(8);
  if (chunkBytes < 1024 || chunkBytes > 16 * 1024 * 1024) throw new BackupIntegrityError('bad chunk size in header');
  return { chunkBytes, noncePrefix: Buffer.from(header.subarray(12, 19)), keyId: uuidOf(header.subarray(24, 40)) };
}

/** A Transform from plaintext to the format above. */
export function encryptStream(key: Buffer, keyId: string, chunkBytes = DEFAULT_CHUNK_BYTES): Transform {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(chunkBytes, 8);
  randomBytes(7).copy(header, 12);
  uuidBytes(keyId).copy(header, 24);
  const prefix = header.subarray(12, 19);
  let index = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let headerSent = false;

  const seal = (plain: Buffer, final: boolean): Buffer => {
    const cipher = createCipheriv('aes-256-gcm', key, nonceOf(prefix, index++, final));
    cipher.setAAD(header);
    const body = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    if (index > 0xffffffff) throw new Error('backup part too large for one key stream');
    return body;
  };

  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      if (!headerSent) {
        this.push(header);
        headerSent = true;
      }
      pending.push(data);
      pendingBytes += data.length;
      if (pendingBytes <= chunkBytes) return done();
      // Keep at least one byte back: the last chunk must be sealed as final in flush.
      let all = Buffer.concat(pending);
      let offset = 0;
      while (all.length - offset > chunkBytes) {
        this.push(seal(all.subarray(offset, offset + chunkBytes), false));
        offset += chunkBytes;
      }
      all = all.subarray(offset);
      pending = [all];
      pendingBytes = all.length;
      done();
    },
    flush(done: TransformCallback) {
      if (!headerSent) this.push(header);
      this.push(seal(Buffer.concat(pending), true));
      done();
    },
  });
}

/**
 * A Transform from the format above back to plaintext. `keyFor(keyId)` returns the data key named
 * by the header. Every chunk is authenticated before its plaintext is pushed; a bad chunk, a
 * missing final chunk or bytes after it fail the stream with BackupIntegrityError.
 */
export function decryptStream(keyFor: (keyId: string) => Buffer | Promise<Buffer>): Transform {
  let header: Buffer | null = null;
  let key: Buffer | null = null;
  let chunkBytes = 0;
  let prefix: Buffer = Buffer.alloc(0);
  let index = 0;
  let finished = false;
  let buffered: Buffer = Buffer.alloc(0);

  const open = (sealed: Buffer, final: boolean): Buffer => {
    if (finished) throw new BackupIntegrityError('data after the final chunk');
    const decipher = createDecipheriv('aes-256-gcm', key!, nonceOf(prefix, index++, final));
    decipher.setAAD(header!);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    try {
      const plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES)), decipher.final()]);
      if (final) finished = true;
      return plain;
    } catch {
      throw new BackupIntegrityError(`chunk ${index - 1} failed authentication (the file was altered or truncated, or the key is wrong)`);
    }
  };

  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        buffered = buffered.length ? Buffer.concat([buffered, data]) : data;
        if (!header) {
          if (buffered.length < HEADER_BYTES) return;
          header = Buffer.from(buffered.subarray(0, HEADER_BYTES));
          const parsed = parseHeader(header);
          chunkBytes = parsed.chunkBytes;
          prefix = parsed.noncePrefix;
          key = await keyFor(parsed.keyId);
          buffered = buffered.subarray(HEADER_BYTES);
        }
        const sealedBytes = chunkBytes + TAG_BYTES;
        // A full sealed chunk is known not to be final only when more bytes follow it.
        let offset = 0;
        while (buffered.length - offset > sealedBytes) {
          this.push(open(buffered.subarray(offset, offset + sealedBytes), false));
          offset += sealedBytes;
        }
        buffered = Buffer.from(buffered.subarray(offset));
      })().then(() => done(), (err: Error) => done(err));
    },
    flush(done: TransformCallback) {
      try {
        if (!header) throw new BackupIntegrityError('not a Havre backup file (too short)');
        if (buffered.length < TAG_BYTES) throw new BackupIntegrityError('the final chunk is missing (truncated file)');
        this.push(open(buffered, true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}
