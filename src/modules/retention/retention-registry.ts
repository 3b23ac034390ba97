/**
 * PRV-4: the registry of retention categories. The configuration declares the rules (what, why,
 * how long); the module that owns the data registers, under the rule's id, the SQL that applies
 * it. The engine knows no table: a new module adds its rule to `retention-rules.ts` and registers
 * its category here, and the daily job, the evidence and the report follow.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../db/db.ts';

/** The SQL of one rule, registered by the module that owns the data. */
export interface RetentionCategory {
  ruleId: string;
  /**
   * Deletes (or anonymises) at most `batchSize` records whose clock started before `cutoff`, in
   * `trx` (one short transaction per batch: the engine commits between calls). Returns how many.
   */
  apply(trx: Executor, cutoff: Date, batchSize: number): Promise<number>;
  /** When the clock of the oldest record still under the rule started; null when there is none. */
  oldest(db: Executor): Promise<Date | null>;
}

export interface RetentionRegistry {
  register(...categories: RetentionCategory[]): void;
  get(ruleId: string): RetentionCategory | undefined;
  ruleIds(): string[];
}

/** A registry; registering one rule id twice is a programming error and throws at start. */
export function createRetentionRegistry(): RetentionRegistry {
  const byId = new Map<string, RetentionCategory>();
  return {
    register(...categories) {
      for (const c of categories) {
        if (byId.has(c.ruleId)) throw new Error(`retention rule "${c.ruleId}" is registered twice`);
        byId.set(c.ruleId, c);
      }
    },
    get: (ruleId) => byId.get(ruleId),
    ruleIds: () => [...byId.keys()],
  };
}

/**
 * One batch of a delete rule: `DELETE … WHERE ctid = ANY(ARRAY(SELECT ctid … LIMIT n FOR UPDATE
 * SKIP LOCKED))`. The inner select finds at most `batchSize` rows by the rule's clock (an index on
 * `clock` makes it cheap), locks them, skipping rows another transaction holds (they are taken by
 * the next run rather than waited for), and the delete reaches them by their physical address.
 *
 * `table`, `clock` and `extra` are SQL written by the owning module, never input.
 */
export async function deleteBatch(trx: Executor, table: string, clock: string, cutoff: Date, batchSize: number, extra?: RawBuilder<unknown>): Promise<number> {
  const where = extra ? sql`${sql.raw(clock)} < ${cutoff} AND ${extra}` : sql`${sql.raw(clock)} < ${cutoff}`;
  // Oldest first, by the clock's index: every batch reads just its rows, instead of a scan in
  // physical order that, late in a big sweep, walks past everything already deleted.
  return deleteWhere(trx, table, where, batchSize, sql.raw(clock));
}

/** The batch of `deleteBatch` for rules whose clock lives in another table (`where` says it all). */
export async function deleteWhere(trx: Executor, table: string, where: RawBuilder<unknown>, batchSize: number, orderBy?: RawBuilder<unknown>): Promise<number> {
  const t = sql.raw(table);
  const order = orderBy ? sql`ORDER BY ${orderBy}` : sql``;
  const res = await sql`DELETE FROM ${t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${t} WHERE ${where} ${order} LIMIT ${batchSize} FOR UPDATE SKIP LOCKED))`.execute(trx);
  return Number(res.numAffectedRows ?? 0n);
}

/** The oldest clock start of the rows under a delete rule (`min(clock)`), or null. */
export async function oldestBy(db: Executor, table: string, clock: string, extra?: RawBuilder<unknown>): Promise<Date | null> {
  const where = extra ? sql`WHERE ${sql.raw(clock)} IS NOT NULL AND ${extra}` : sql`WHERE ${sql.raw(clock)} IS NOT NULL`;
  const res = await sql<{ oldest: Date | null }>`SELECT min(${sql.raw(clock)}) AS oldest FROM ${sql.raw(table)} ${where}`.execute(db);
  const v = res.rows[0]?.oldest ?? null;
  return v === null ? null : new Date(v);
}

/** A category for a plain "delete rows of `table` whose `clock` is before the cutoff" rule. */
export function deleteRule(ruleId: string, table: string, clock: string, extra?: RawBuilder<unknown>): RetentionCategory {
  return {
    ruleId,
    apply: (trx, cutoff, batchSize) => deleteBatch(trx, table, clock, cutoff, batchSize, extra),
    oldest: (db) => oldestBy(db, table, clock, extra),
  };
}
