/**
 * SQL of the tenants module, and nothing else. Every method takes an optional transaction, so the
 * service decides what commits together (a transition, its history row and its audit entry).
 *
 * Reads join the fleet's `tenant_databases`/`database_servers` for the server's name: one query
 * for a list instead of one fleet call per tenant (read-only; the fleet owns those rows).
 */
import type { Insertable, Selectable } from 'kysely';
import type { Db, Executor } from '../../db/db.ts';
import type { TenantState } from './tenant-states.ts';
import type { TenantsTable, TenantTransitionsTable } from './tenants-tables.ts';

export type TenantRow = TenantsTable;
export type TransitionRow = Selectable<TenantTransitionsTable>;

/** A tenant with the name of the server holding its database (null while provisioning). */
export interface TenantWithServer extends TenantRow {
  server_name: string | null;
}

export interface TenantFilter {
  customerIds?: readonly string[];
  state?: TenantState;
  region?: string;
  limit?: number;
}

export interface TransitionInput {
  id: string;
  to: TenantState;
  /** The states the tenant must be in now (compare-and-set). */
  from: readonly TenantState[];
  at: Date;
  /** Other columns that change with the state (e.g. trial_ends_at). */
  patch?: Partial<Pick<TenantRow, 'trial_ends_at' | 'plan' | 'tenant_database_id'>>;
}

export type NewTransition = Insertable<TenantTransitionsTable>;

export function createTenantsRepo(db: Db) {
  const withServer = (ex: Executor) =>
    ex
      .selectFrom('tenants as t')
      .leftJoin('tenant_databases as td', 'td.id', 't.tenant_database_id')
      .leftJoin('database_servers as s', 's.id', 'td.server_id')
      .selectAll('t')
      .select('s.name as server_name');

  return {
    /** Inserts a tenant; with an idempotency key already used by the customer, inserts nothing and returns undefined. */
    async insert(row: TenantRow, trx: Executor = db): Promise<TenantRow | undefined> {
      return trx
        .insertInto('tenants')
        .values(row)
        .onConflict((oc) => oc.constraint('tenants_idempotency_key').doNothing())
        .returningAll()
        .executeTakeFirst();
    },

    async find(id: string, trx: Executor = db): Promise<TenantWithServer | undefined> {
      return withServer(trx).where('t.id', '=', id).executeTakeFirst();
    },

    async findByIdempotencyKey(customerId: string, key: string, trx: Executor = db): Promise<TenantWithServer | undefined> {
      return withServer(trx).where('t.customer_id', '=', customerId).where('t.idempotency_key', '=', key).executeTakeFirst();
    },

    async list(filter: TenantFilter, trx: Executor = db): Promise<TenantWithServer[]> {
      if (filter.customerIds?.length === 0) return [];
      let q = withServer(trx).orderBy('t.created_at').orderBy('t.id');
      if (filter.customerIds) q = q.where('t.customer_id', 'in', filter.customerIds);
      if (filter.state) q = q.where('t.state', '=', filter.state);
      if (filter.region) q = q.where('t.region', '=', filter.region);
      if (filter.limit) q = q.limit(filter.limit);
      return q.execute();
    },

    /**
     * The compare-and-set of TEN-3: `UPDATE … SET state = to WHERE id = $id AND state = ANY(from)`.
     * Returns the updated row, or undefined when the tenant was not in one of `from` (or does not
     * exist). Concurrent callers serialise on the row lock; the loser re-reads the new state and
     * matches nothing.
     */
    async transition(input: TransitionInput, trx: Executor = db): Promise<{ row: TenantRow; from: TenantState } | undefined> {
      if (input.from.length === 0) return undefined;
      // The previous state, read under the same row lock as the update (a CTE sees the row as it
      // was before the UPDATE of this statement).
      const result = await trx
        .with('before', (qb) => qb.selectFrom('tenants').select(['id', 'state']).where('id', '=', input.id).forUpdate())
        .updateTable('tenants')
        .from('before')
        .set({ ...input.patch, state: input.to, state_changed_at: input.at, updated_at: input.at })
        .whereRef('tenants.id', '=', 'before.id')
        .where((eb) => eb('tenants.state', '=', eb.fn.any(eb.val(input.from as TenantState[]))))
        .returningAll('tenants')
        .returning('before.state as previous_state')
        .executeTakeFirst();
      if (!result) return undefined;
      const { previous_state, ...row } = result;
      return { row, from: previous_state };
    },

    async setDatabase(id: string, tenantDatabaseId: string, at: Date, trx: Executor = db): Promise<void> {
      await trx.updateTable('tenants').set({ tenant_database_id: tenantDatabaseId, updated_at: at }).where('id', '=', id).execute();
    },

    /** Compare-and-set of a tenant's database (in-place restore); false when it no longer uses `from`. */
    async switchDatabase(id: string, from: string, to: string, at: Date, trx: Executor = db): Promise<boolean> {
      const r = await trx.updateTable('tenants').set({ tenant_database_id: to, updated_at: at }).where('id', '=', id).where('tenant_database_id', '=', from).where('state', '!=', 'destroyed').executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },

    async insertTransition(row: NewTransition, trx: Executor = db): Promise<void> {
      await trx.insertInto('tenant_transitions').values(row).execute();
    },

    async listTransitions(tenantId: string, trx: Executor = db): Promise<TransitionRow[]> {
      return trx.selectFrom('tenant_transitions').selectAll().where('tenant_id', '=', tenantId).orderBy('id').execute();
    },

    async customerExists(customerId: string, trx: Executor = db): Promise<boolean> {
      const row = await trx.selectFrom('customers').select('id').where('id', '=', customerId).executeTakeFirst();
      return row !== undefined;
    },
  };
}

export type TenantsRepo = ReturnType<typeof createTenantsRepo>;
