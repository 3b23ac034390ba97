/**
 * Each tenant's backup data key (BKP-6): random, wrapped by the master key, kept in the control
 * plane and escrowed in every backup location (`keys/<tenantId>.json`, unlocked), so an operator
 * who lost the control plane but kept the master key and a bucket can still restore
 * (docs/BACKUPS.md). Destroying both (crypto-shredding, BKP-7) makes every copy unreadable at once.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import type { SecretBox } from '../../lib/crypto.ts';
import { AppError } from '../../lib/errors.ts';
import type { BackupStore } from '../../lib/storage/backup-store.ts';
import { backupKeyContext, newDataKey } from './backup-crypto.ts';

export interface EscrowedKey {
  format: 'havre-backup-key/1';
  tenantId: string;
  keyId: string;
  /** The data key sealed by the master key (crypto.ts format), context `backup-key:<tenant>:<key>`. */
  wrappedKey: string;
  createdAt: string;
}

export function escrowKey(tenantId: string): string {
  return `keys/${tenantId}.json`;
}

export function createBackupKeys(deps: { db: Db; secrets: SecretBox; clock: Clock; stores: readonly BackupStore[] }) {
  const { db, secrets, clock, stores } = deps;
  const cache = new Map<string, Buffer>();

  function unwrap(tenantId: string, keyId: string, wrapped: string): Buffer {
    return Buffer.from(secrets.open(wrapped, backupKeyContext(tenantId, keyId)), 'base64');
  }

  return {
    /**
     * The tenant's key, created on first use (concurrent callers get the same one: insert or keep).
     * Escrows the wrapped key in every location that lacks it; an unreachable location is left for
     * the next backup (the backup itself then fails there anyway and is repaired later).
     */
    async ensure(tenantId: string): Promise<{ keyId: string; key: Buffer }> {
      const fresh = newDataKey();
      const keyId = randomUUID();
      await db
        .insertInto('backup_keys')
        .values({ tenant_id: tenantId, key_id: keyId, wrapped_key: secrets.seal(fresh.toString('base64'), backupKeyContext(tenantId, keyId)), created_at: clock.now(), shredded_at: null })
        .onConflict((oc) => oc.column('tenant_id').doNothing())
        .execute();
      const row = await db.selectFrom('backup_keys').selectAll().where('tenant_id', '=', tenantId).executeTakeFirstOrThrow();
      if (!row.wrapped_key) throw new AppError(410, 'backup_key_destroyed', 'The backups of this tenant were destroyed (their key is shredded).');
      const escrow: EscrowedKey = { format: 'havre-backup-key/1', tenantId, keyId: row.key_id, wrappedKey: row.wrapped_key, createdAt: row.created_at.toISOString() };
      const body = Buffer.from(JSON.stringify(escrow, null, 2) + '\n');
      await Promise.allSettled(
        stores.map(async (s) => {
          const existing = await s.getMutable(escrowKey(tenantId));
          if (!existing || !existing.equals(body)) await s.putMutable(escrowKey(tenantId), body);
        }),
      );
      const key = unwrap(tenantId, row.key_id, row.wrapped_key);
      cache.set(row.key_id, key);
      return { keyId: row.key_id, key };
    },

    /** The key named by a part's header; 410 once shredded. */
    async byId(keyId: string): Promise<Buffer> {
      const cached = cache.get(keyId);
      if (cached) return cached;
      const row = await db.selectFrom('backup_keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
      if (!row) throw new Error(`unknown backup key ${keyId}`);
      if (!row.wrapped_key) throw new AppError(410, 'backup_key_destroyed', 'The backups of this tenant were destroyed (their key is shredded).');
      const key = unwrap(row.tenant_id, row.key_id, row.wrapped_key);
      cache.set(keyId, key);
      return key;
    },
  };
}

export type BackupKeys = ReturnType<typeof createBackupKeys>;
