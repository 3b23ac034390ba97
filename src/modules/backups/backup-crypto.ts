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

/**
 * A Transform from plaintext to the format above. The plaintext is gathered in one reused chunk
 * buffer (no per-write concatenation): memory stays at a chunk or two whatever the size.
 */
export function encryptStream(key: Buffer, keyId: string, chunkBytes = DEFAULT_CHUNK_BYTES): Transform {
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(chunkBytes, 8);
  randomBytes(7).copy(header, 12);
  uuidBytes(keyId).copy(header, 24);
  const prefix = header.subarray(12, 19);
  const chunk = Buffer.allocUnsafe(chunkBytes);
  let fill = 0;
  let index = 0;
  let headerSent = false;

  const seal = (plain: Buffer, final: boolean): Buffer => {
    if (index > 0xffffffff) throw new Error('backup part too large for one key stream');
    const cipher = createCipheriv('aes-256-gcm', key, nonceOf(prefix, index++, final));
    cipher.setAAD(header);
    return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  };

  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      if (!headerSent) {
        this.push(header);
        headerSent = true;
      }
      let offset = 0;
      while (offset < data.length) {
        // A full chunk is sealed only once more bytes follow it: the last one must be sealed as final.
        if (fill === chunkBytes) {
          this.push(seal(chunk, false));
          fill = 0;
        }
        const n = Math.min(chunkBytes - fill, data.length - offset);
        data.copy(chunk, fill, offset, offset + n);
        fill += n;
        offset += n;
      }
      done();
    },
    flush(done: TransformCallback) {
      if (!headerSent) this.push(header);
      this.push(seal(chunk.subarray(0, fill), true));
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
  const header = Buffer.alloc(HEADER_BYTES);
  let headerFill = 0;
  let key: Buffer | null = null;
  let prefix: Buffer = Buffer.alloc(0);
  let sealed: Buffer = Buffer.alloc(0);
  let fill = 0;
  let index = 0;

  const open = (bytes: Buffer, final: boolean): Buffer => {
    if (bytes.length < TAG_BYTES) throw new BackupIntegrityError('the final chunk is missing (truncated file)');
    const decipher = createDecipheriv('aes-256-gcm', key!, nonceOf(prefix, index++, final));
    decipher.setAAD(header);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(bytes.subarray(0, bytes.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new BackupIntegrityError(`chunk ${index - 1} failed authentication (the file was altered or truncated, or the key is wrong)`);
    }
  };

  return new Transform({
    transform(data: Buffer, _enc, done: TransformCallback) {
      void (async () => {
        let offset = 0;
        if (headerFill < HEADER_BYTES) {
          const n = Math.min(HEADER_BYTES - headerFill, data.length);
          data.copy(header, headerFill, 0, n);
          headerFill += n;
          offset = n;
          if (headerFill < HEADER_BYTES) return;
          const parsed = parseHeader(header);
          prefix = parsed.noncePrefix;
          sealed = Buffer.allocUnsafe(parsed.chunkBytes + TAG_BYTES);
          key = await keyFor(parsed.keyId);
        }
        while (offset < data.length) {
          // A full sealed chunk is known not to be final only when more bytes follow it.
          if (fill === sealed.length) {
            this.push(open(sealed, false));
            fill = 0;
          }
          const n = Math.min(sealed.length - fill, data.length - offset);
          data.copy(sealed, fill, offset, offset + n);
          fill += n;
          offset += n;
        }
      })().then(() => done(), (err: Error) => done(err));
    },
    flush(done: TransformCallback) {
      try {
        if (headerFill < HEADER_BYTES) throw new BackupIntegrityError('not a Havre backup file (too short)');
        this.push(open(sealed.subarray(0, fill), true));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}
