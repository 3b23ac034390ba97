/**
 * The rules of tenants: who may create one and where (TEN-2), crash-safe and idempotent creation,
 * and the lifecycle (TEN-3) as compare-and-set transitions, each recorded in `tenant_transitions`
 * and in the audit log (SEC-4) in the transaction that makes it.
 *
 * Authorization: a principal who is not a member of a tenant's customer gets 404
 * `tenant_not_found` for it (TEN-1 at the API level), exactly as for an id that does not exist.
 */
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config/config.ts';
import type { Db, Trx } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { sha256Hex } from '../../lib/crypto.ts';
import { badRequest, conflict, forbidden, notFound, unavailable } from '../../lib/errors.ts';
import type { Principal } from '../accounts/authn.ts';
import { ALL_ROLES, authorizeMember, MANAGERS, membershipsOf } from '../accounts/membership.ts';
import type { AuditService } from '../audit/audit-service.ts';
import type { AuditActorType } from '../audit/audit-tables.ts';
import { isNoPooledDatabase, type FleetModule } from '../fleet/index.ts';
import { allowedFrom, type TenantState } from './tenant-states.ts';
import type { TenantFilter, TenantRow, TenantsRepo, TenantWithServer, TransitionRow } from './tenants-repo.ts';
import { isUuid } from '../../lib/ids.ts';

/** Who acts on a tenant. Members and staff carry their principal; the CLI and jobs do not. */
export interface TenantActor {
  type: AuditActorType;
  id?: string | null;
  ip?: string | null;
  principal?: Principal;
}

export function actorOfPrincipal(principal: Principal, ip: string | null): TenantActor {
  return { type: principal.staffRole ? 'staff' : 'user', id: principal.userId, ip, principal };
}

export interface CreateTenantInput {
  /** Optional for a member: defaults to the one customer they own or administer. */
  customerId?: string;
  name: string;
  region?: string;
  /** The client's Idempotency-Key: the same key for the same customer gives the same tenant. */
  idempotencyKey?: string;
  actor: TenantActor;
}

export interface TransitionOptions {
  actor: TenantActor;
  reason?: string | null;
  /** Narrows the states the tenant may be in (e.g. resume: only from suspended). */
  from?: readonly TenantState[];
}

export interface TenantsServiceDeps {
  db: Db;
  repo: TenantsRepo;
  clock: Clock;
  audit: AuditService;
  fleet: Pick<FleetModule, 'databases'>;
  settings: Pick<Config['tenants'], 'regions' | 'defaultRegion' | 'trialDays'>;
}

const DAY_MS = 86_400_000;
/** Creation transactions tried before 503 `no_capacity` (each failed try provisions one database first). */
const CREATE_TRIES = 3;

const tenantNotFound = () => notFound('tenant_not_found', 'No such tenant.');

function cleanName(name: string): string {
  const trimmed = name.trim();
  if (trimmed.length < 1 || trimmed.length > 100) throw badRequest('invalid_name', 'A tenant name has 1 to 100 characters.');
  return trimmed;
}

function cleanReason(reason: string | null | undefined): string | null {
  const r = reason?.trim() ?? '';
  if (r.length > 500) throw badRequest('invalid_reason', 'A reason has at most 500 characters.');
  return r === '' ? null : r;
}

export function createTenantsService(deps: TenantsServiceDeps) {
  const { db, repo, clock, audit, fleet, settings } = deps;

  /** Writes the history row and the audit entry of a state change, in the caller's transaction. */
  async function record(trx: Trx, tenant: TenantRow, from: TenantState | null, to: TenantState, actor: TenantActor, reason: string | null, at: Date) {
    await repo.insertTransition({ tenant_id: tenant.id, from_state: from, to_state: to, reason, actor_type: actor.type, actor_id: actor.id ?? null, at }, trx);
    await audit.record(
      {
        actorType: actor.type,
        actorId: actor.id ?? null,
        ip: actor.ip ?? null,
        action: 'tenant.transition',
        subjectType: 'tenant',
        subjectId: tenant.id,
        customerId: tenant.customer_id,
        data: { from, to, ...(reason && { reason }) },
      },
      trx,
    );
  }

  /** The compare-and-set transition inside `trx`; a typed 404/409 when it cannot happen. */
  async function transitionIn(trx: Trx, id: string, to: TenantState, options: TransitionOptions, patch?: { trial_ends_at?: Date | null }): Promise<TenantRow> {
    const at = clock.now();
    const reason = cleanReason(options.reason);
    const done = isUuid(id) ? await repo.transition({ id, to, from: allowedFrom(to, options.from), at, patch }, trx) : undefined;
    if (!done) {
      const current = isUuid(id) ? await repo.find(id, trx) : undefined;
      if (!current) throw tenantNotFound();
      throw conflict('invalid_transition', `A tenant in state "${current.state}" cannot go to "${to}" this way.`, { currentState: current.state, targetState: to });
    }
    await record(trx, done.row, done.from, to, options.actor, reason, at);
    return done.row;
  }

  /**
   * One creation attempt, in one transaction: the tenant in `provisioning`, a pooled database
   * claimed (never provisioned here: `no_pooled_database` propagates), then `trial`. Returns the
   * new id, or the key to replay when a concurrent request with the same key committed first.
   */
  function createOnce(
    args: { customerId: string; name: string; region: string; key: string | undefined; fingerprint: string; actor: TenantActor },
    preferred: string | undefined,
  ): Promise<{ id: string } | { replayOf: string }> {
    return db.transaction().execute(async (trx) => {
      const now = clock.now();
      const id = randomUUID();
      const inserted = await repo.insert(
        {
          id,
          customer_id: args.customerId,
          name: args.name,
          region: args.region,
          state: 'provisioning',
          tenant_database_id: null,
          plan: null,
          trial_ends_at: null,
          idempotency_key: args.key ?? null,
          idempotency_fingerprint: args.key === undefined ? null : args.fingerprint,
          created_at: now,
          updated_at: now,
          state_changed_at: now,
        },
        trx,
      );
      // A concurrent request with the same key committed first (the insert waited for it).
      if (!inserted) return { replayOf: args.key! };
      // Claim the database before the first audit entry (the audit chain's lock lasts until commit).
      const database = await fleet.databases.acquire(args.region, trx, { prefer: preferred });
      await record(trx, inserted, null, 'provisioning', args.actor, null, now);
      await repo.setDatabase(id, database.id, now, trx);
      await transitionIn(trx, id, 'trial', { actor: args.actor, reason: 'database ready' }, { trial_ends_at: new Date(now.getTime() + settings.trialDays * DAY_MS) });
      return { id };
    });
  }

  /** The customer a member creates a tenant for: the given one, or the only one they manage. */
  async function customerFor(input: CreateTenantInput): Promise<string> {
    const { principal } = input.actor;
    if (input.actor.type === 'user') {
      if (!principal) throw new Error('a user actor needs its principal');
      let customerId = input.customerId;
      if (customerId === undefined) {
        const managed = (await membershipsOf(db, principal.userId)).filter((m) => MANAGERS.includes(m.role));
        if (managed.length !== 1) {
          throw badRequest('customer_required', managed.length === 0 ? 'You own or administer no customer.' : 'You manage several customers: say which one with customerId.');
        }
        customerId = managed[0]!.customerId;
      }
      await authorizeMember(db, principal, customerId, MANAGERS);
      // ACC-1: a tenant can be created only once the e-mail address is verified.
      if (!principal.emailVerified) throw forbidden('email_not_verified', 'Verify your e-mail address before creating a tenant.');
      return customerId;
    }
    // Operator paths (CLI, staff, jobs): the customer must exist.
    if (!input.customerId || !isUuid(input.customerId) || !(await repo.customerExists(input.customerId))) {
      throw notFound('customer_not_found', 'No such customer.');
    }
    return input.customerId;
  }

  function replay(existing: TenantWithServer, fingerprint: string): { tenant: TenantWithServer; created: false } {
    if (existing.idempotency_fingerprint !== fingerprint) {
      throw conflict('idempotency_key_reused', 'This Idempotency-Key was already used for a different tenant creation.', { tenantId: existing.id });
    }
    return { tenant: existing, created: false };
  }

  async function findForMember(principal: Principal, id: string): Promise<TenantWithServer> {
    const tenant = isUuid(id) ? await repo.find(id) : undefined;
    if (!tenant) throw tenantNotFound();
    await authorizeMember(db, principal, tenant.customer_id, ALL_ROLES, 'tenant_not_found');
    return tenant;
  }

  async function findForStaff(id: string): Promise<TenantWithServer> {
    const tenant = isUuid(id) ? await repo.find(id) : undefined;
    if (!tenant) throw tenantNotFound();
    return tenant;
  }

  /**
   * Moves a tenant to `to` (TEN-3), recorded; 404 `tenant_not_found` / 409 `invalid_transition`.
   * Inside the caller's `trx` when given (the deletion module commits its own rows with the change).
   */
  async function transition(id: string, to: TenantState, options: TransitionOptions, trx?: Trx): Promise<TenantWithServer> {
    if (trx) {
      await transitionIn(trx, id, to, options);
      return (await repo.find(id, trx))!;
    }
    await db.transaction().execute((t) => transitionIn(t, id, to, options));
    return (await repo.find(id))!;
  }

  return {
    /**
     * Creates a tenant: in one transaction it is inserted in `provisioning`, given a pooled database
     * of its region from the fleet, and moved to `trial` (trial end = now + trialDays). A crash or an
     * error rolls all of it back (the database stays in the warm pool); nothing half-made remains.
     * With no pooled database ready, the transaction rolls back, one is provisioned outside any
     * transaction, and the creation is tried again (CREATE_TRIES, then 503 `no_capacity`).
     * With an idempotency key, a retry returns the tenant of the first attempt (`created: false`).
     */
    async create(input: CreateTenantInput): Promise<{ tenant: TenantWithServer; created: boolean }> {
      const name = cleanName(input.name);
      const region = input.region ?? settings.defaultRegion;
      if (!settings.regions.includes(region)) {
        throw badRequest('unknown_region', `Unknown region "${region}"; available: ${settings.regions.join(', ')}.`, { regions: [...settings.regions] });
      }
      const key = input.idempotencyKey;
      if (key !== undefined && (key.length < 1 || key.length > 200)) throw badRequest('invalid_idempotency_key', 'An Idempotency-Key has 1 to 200 characters.');
      const customerId = await customerFor(input);
      const fingerprint = sha256Hex(JSON.stringify([name, region]));
      if (key !== undefined) {
        const existing = await repo.findByIdempotencyKey(customerId, key);
        if (existing) return replay(existing, fingerprint);
      }

      // No provisioning inside the transaction (it would hold a control-plane connection while
      // waiting for DDL and a second connection: enough concurrent creations deadlock the pool).
      // With no pooled database ready: roll back, provision one outside, try again.
      let prefer: string | undefined;
      let outcome: { id: string } | { replayOf: string } | undefined;
      for (let attempt = 0; attempt < CREATE_TRIES && !outcome; attempt++) {
        try {
          outcome = await createOnce({ customerId, name, region, key, fingerprint, actor: input.actor }, prefer);
        } catch (err) {
          if (!isNoPooledDatabase(err)) throw err;
          if (attempt < CREATE_TRIES - 1) prefer = await fleet.databases.ensureAvailable(region);
        }
      }
      if (!outcome) throw unavailable('no_capacity', 'No tenant database could be prepared right now; try again in a moment.');

      if ('replayOf' in outcome) {
        const existing = await repo.findByIdempotencyKey(customerId, outcome.replayOf);
        if (!existing) throw conflict('idempotency_conflict', 'A concurrent request with this Idempotency-Key did not finish; retry.');
        return replay(existing, fingerprint);
      }
      return { tenant: (await repo.find(outcome.id))!, created: true };
    },

    transition,

    /**
     * A new tenant of `customerId` on a database that a restore (BKP-5) already claimed and filled,
     * inside the caller's transaction: inserted, recorded and moved to `trial` like `create`.
     */
    async adoptDatabase(input: { customerId: string; name: string; region: string; tenantDatabaseId: string; actor: TenantActor }, trx: Trx): Promise<string> {
      const now = clock.now();
      const id = randomUUID();
      const inserted = await repo.insert(
        { id, customer_id: input.customerId, name: cleanName(input.name), region: input.region, state: 'provisioning', tenant_database_id: null, plan: null, trial_ends_at: null, idempotency_key: null, idempotency_fingerprint: null, created_at: now, updated_at: now, state_changed_at: now },
        trx,
      );
      await record(trx, inserted!, null, 'provisioning', input.actor, 'restored from a backup', now);
      await repo.setDatabase(id, input.tenantDatabaseId, now, trx);
      await transitionIn(trx, id, 'trial', { actor: input.actor, reason: 'database restored' }, { trial_ends_at: new Date(now.getTime() + settings.trialDays * DAY_MS) });
      return id;
    },

    /**
     * In-place restore (BKP-5): the tenant moves from database `from` to `to` in the caller's
     * transaction (compare-and-set: false when it no longer uses `from`), audited.
     */
    async switchDatabase(input: { tenantId: string; from: string; to: string; actor: TenantActor; backupId: string }, trx: Trx): Promise<boolean> {
      const now = clock.now();
      if (!(await repo.switchDatabase(input.tenantId, input.from, input.to, now, trx))) return false;
      const tenant = (await repo.find(input.tenantId, trx))!;
      await audit.record(
        { actorType: input.actor.type, actorId: input.actor.id ?? null, ip: input.actor.ip ?? null, action: 'tenant.database_switched', subjectType: 'tenant', subjectId: tenant.id, customerId: tenant.customer_id, data: { from: input.from, to: input.to, backupId: input.backupId } },
        trx,
      );
      return true;
    },

    /** Staff: suspends a tenant in trial or active (e.g. unpaid, abuse). */
    async suspend(id: string, options: { actor: TenantActor; reason: string }): Promise<TenantWithServer> {
      if (!cleanReason(options.reason)) throw badRequest('reason_required', 'Say why the tenant is suspended.');
      return transition(id, 'suspended', { ...options, from: ['trial', 'active'] });
    },

    /**
     * Staff: resumes a suspended (or reactivates a cancelled) tenant: back to `trial` when its trial
     * has not ended and no plan was chosen, otherwise to `active`.
     */
    async resume(id: string, options: { actor: TenantActor; reason?: string | null }): Promise<TenantWithServer> {
      const tenant = await findForStaff(id);
      const inTrial = tenant.plan === null && tenant.trial_ends_at !== null && tenant.trial_ends_at > clock.now();
      return transition(id, inTrial ? 'trial' : 'active', { ...options, from: ['suspended', 'cancelled'] });
    },

    /** A tenant of one of the member's customers (any role), else 404. */
    getForMember: findForMember,

    /** Every tenant of every customer the member belongs to. */
    async listForMember(principal: Principal): Promise<TenantWithServer[]> {
      const customerIds = (await membershipsOf(db, principal.userId)).map((m) => m.customerId);
      return repo.list({ customerIds });
    },

    async transitionsForMember(principal: Principal, id: string): Promise<TransitionRow[]> {
      const tenant = await findForMember(principal, id);
      return repo.listTransitions(tenant.id);
    },

    /** Staff and CLI: any tenant. */
    get: findForStaff,

    async list(filter: Omit<TenantFilter, 'customerIds'> & { customerId?: string } = {}): Promise<TenantWithServer[]> {
      const { customerId, ...rest } = filter;
      if (customerId !== undefined && !isUuid(customerId)) return [];
      return repo.list({ ...rest, ...(customerId !== undefined && { customerIds: [customerId] }) });
    },

    async transitions(id: string): Promise<TransitionRow[]> {
      const tenant = await findForStaff(id);
      return repo.listTransitions(tenant.id);
    },
  };
}

export type TenantsService = ReturnType<typeof createTenantsService>;
