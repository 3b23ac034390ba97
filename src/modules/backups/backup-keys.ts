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

    /**
     * The key named by a part's header; 410 once shredded. The row is read every time (only the
     * unwrapping is cached): a key shredded by another node must stop working here at once (BKP-7).
     */
    async byId(keyId: string): Promise<Buffer> {
      const row = await db.selectFrom('backup_keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
      if (!row) throw new Error(`unknown backup key ${keyId}`);
      if (!row.wrapped_key) {
        cache.delete(keyId);
        throw new AppError(410, 'backup_key_destroyed', 'The backups of this tenant were destroyed (their key is shredded).');
      }
      const cached = cache.get(keyId);
      if (cached) return cached;
      const key = unwrap(row.tenant_id, row.key_id, row.wrapped_key);
      cache.set(keyId, key);
      return key;
    },

    /**
     * BKP-7 crypto-shredding: the wrapped key is erased from the control plane and the escrow
     * object deleted from every location, so every copy of every backup of the tenant becomes
     * unreadable at once, even where object lock forbids deleting the backups yet. Idempotent;
     * throws when a location could not be reached (the caller retries; the control-plane key is
     * already gone by then). Returns the key id, or null when the tenant never had a key.
     */
    async shred(tenantId: string): Promise<{ keyId: string | null; shreddedNow: boolean }> {
      const updated = await db.updateTable('backup_keys').set({ wrapped_key: null, shredded_at: clock.now() }).where('tenant_id', '=', tenantId).where('wrapped_key', 'is not', null).returning('key_id').executeTakeFirst();
      const row = await db.selectFrom('backup_keys').select('key_id').where('tenant_id', '=', tenantId).executeTakeFirst();
      if (row) cache.delete(row.key_id);
      const results = await Promise.allSettled(stores.map((s) => s.deleteMutable(escrowKey(tenantId))));
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) throw new Error(`the key escrow of tenant ${tenantId} could not be deleted in location "${stores[failed]!.name}": ${String((results[failed] as PromiseRejectedResult).reason)}`);
      return { keyId: row?.key_id ?? null, shreddedNow: updated !== undefined };
    },
  };
}

export type BackupKeys = ReturnType<typeof createBackupKeys>;
