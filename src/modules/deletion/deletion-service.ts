/**
 * The rules of the deletion lifecycle (TEN-3, TEN-4, TEN-5):
 *
 * - cancel: the tenant → cancelled (recorded) and its `tenant_deletions` row (grace period) commit
 *   together; then the role is set NOLOGIN and its pools closed (a crash in between is repaired
 *   by the job: `access_applied`). The workspace API answers 409 `tenant_cancelled` from the
 *   commit on. Members (owner/administrator), staff (with a reason) and other modules (contract
 *   end, unconverted trial) cancel through `cancel`.
 * - reactivate (owner, within the grace period): the row → reactivated and the tenant → trial or
 *   active in one transaction, then LOGIN restored.
 * - destroy now (owner, typed name; staff admin): cancels first when needed, then the same
 *   point of no return and steps as the grace-period job, run in the request.
 * - certificate: built from the row, which is kept for the operator's records.
 *
 * Authorization: a non-member gets 404 `tenant_not_found` (TEN-1), a too-low role 403.
 */
import type { Principal } from '../accounts/authn.ts';
import { authorizeMember } from '../accounts/membership.ts';
import type { MemberRole } from '../accounts/accounts-tables.ts';
import { badRequest, conflict, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import type { TenantsService, TenantActor } from '../tenants/index.ts';
import type { TenantState } from '../tenants/tenant-states.ts';
import { buildCertificate, type DeletionCertificate } from './deletion-certificate.ts';
import { applyAccess, claimDestruction, runDestructionSteps, type DeletionDeps } from './deletion-jobs.ts';
import type { DeletionRow } from './deletion-repo.ts';
import type { CancelCause, DestructionRule } from './deletion-tables.ts';

const DAY_MS = 86_400_000;
const MANAGERS: MemberRole[] = ['owner', 'administrator'];
const OWNER: MemberRole[] = ['owner'];
/** States a tenant can be cancelled from. */
const CANCELLABLE: readonly TenantState[] = ['trial', 'active', 'suspended'];

export interface DeletionServiceDeps extends DeletionDeps {
  tenants: Pick<TenantsService, 'transition' | 'get'>;
}

/** What the API shows of a tenant's deletion. */
export interface DeletionStatus {
  tenantId: string;
  state: DeletionRow['state'];
  cancelledAt: string;
  cause: CancelCause;
  destroyAfter: string;
  destroyedAt: string | null;
  rule: DestructionRule | null;
}

export function presentDeletion(row: DeletionRow): DeletionStatus {
  return {
    tenantId: row.tenant_id,
    state: row.state,
    cancelledAt: row.cancelled_at.toISOString(),
    cause: row.cancel_cause,
    destroyAfter: row.destroy_after.toISOString(),
    destroyedAt: row.destroyed_at?.toISOString() ?? null,
    rule: row.rule,
  };
}

function cleanReason(reason: string | null | undefined): string | null {
  const r = reason?.trim() ?? '';
  if (r.length > 500) throw badRequest('invalid_reason', 'A reason has at most 500 characters.');
  return r === '' ? null : r;
}

export function createDeletionService(deps: DeletionServiceDeps) {
  const { db, repo, clock, tenants, fleet } = deps;
  const tenantNotFound = () => notFound('tenant_not_found', 'No such tenant.');

  /** The tenant, after checking the principal's role in its customer (404 for non-members). */
  async function tenantFor(principal: Principal, tenantId: string, roles: MemberRole[]) {
    if (!isUuid(tenantId)) throw tenantNotFound();
    const tenant = await tenants.get(tenantId);
    await authorizeMember(db, principal, tenant.customer_id, roles, 'tenant_not_found');
    return tenant;
  }

  /**
   * Cancels a tenant (trial, active or suspended → cancelled) for `cause`: recorded with its row
   * in one transaction, access revoked right after. 409 `invalid_transition` from another state.
   */
  async function cancel(tenantId: string, input: { actor: TenantActor; cause: CancelCause; reason?: string | null }): Promise<DeletionRow> {
    const reason = cleanReason(input.reason);
    const tenant = await tenants.get(tenantId);
    const database = tenant.tenant_database_id ? await fleet.databases.get(tenant.tenant_database_id) : null;
    const now = clock.now();
    const row = await db.transaction().execute(async (trx) => {
      await tenants.transition(tenantId, 'cancelled', { actor: input.actor, reason: reason ?? `cancelled (${input.cause.replace('_', ' ')})`, from: CANCELLABLE }, trx);
      const inserted = await repo.upsertCancelled(
        {
          tenant_id: tenant.id,
          customer_id: tenant.customer_id,
          state: 'pending',
          cancel_cause: input.cause,
          cancel_reason: reason,
          cancelled_at: now,
          cancelled_by: input.actor.id ?? input.actor.type,
          destroy_after: new Date(now.getTime() + deps.settings.graceDays * DAY_MS),
          access_applied: false,
          attempts: 0,
          tenant_name: tenant.name,
          region: tenant.region,
          tenant_database_id: tenant.tenant_database_id,
          database_name: database?.databaseName ?? null,
          role_name: database?.roleName ?? null,
          server_name: database?.serverName ?? null,
          updated_at: now,
        },
        trx,
      );
      // The tenant was cancellable, so its row can only be missing or reactivated: never here.
      if (!inserted) throw conflict('deletion_in_progress', 'This tenant is already being deleted.');
      return inserted;
    });
    await applyAccess(deps, row);
    return (await repo.find(tenantId))!;
  }

  /** Reactivation within the grace period: back to trial (trial not over, no plan) or active, LOGIN restored. */
  async function reactivate(tenantId: string, actor: TenantActor): Promise<DeletionRow> {
    const tenant = await tenants.get(tenantId);
    const now = clock.now();
    const inTrial = tenant.plan === null && tenant.trial_ends_at !== null && tenant.trial_ends_at > now;
    const row = await db.transaction().execute(async (trx) => {
      const reactivated = await repo.reactivate(tenantId, now, trx);
      if (!reactivated) {
        const current = await repo.find(tenantId, trx);
        if (current?.state === 'pending') throw conflict('grace_period_over', 'The grace period of this tenant is over: it is being destroyed.', { destroyAfter: current.destroy_after.toISOString() });
        throw conflict('tenant_not_cancelled', 'Only a cancelled tenant can be reactivated.', { state: tenant.state });
      }
      await tenants.transition(tenantId, inTrial ? 'trial' : 'active', { actor, reason: 'reactivated within the grace period', from: ['cancelled'] }, trx);
      return reactivated;
    });
    await applyAccess(deps, row);
    return (await repo.find(tenantId))!;
  }

  /**
   * Destroys a tenant now (any state but destroyed; cancels it first when needed): the point of
   * no return, then every step in this call. Returns the row (`destroyed`, or `destroying` when a
   * step failed: the job finishes it).
   */
  async function destroyNow(tenantId: string, input: { actor: TenantActor; rule: DestructionRule; reason?: string | null }): Promise<DeletionRow> {
    const tenant = await tenants.get(tenantId);
    if (tenant.state === 'destroyed') throw conflict('tenant_destroyed', 'This tenant is already destroyed.');
    if (tenant.state !== 'cancelled') await cancel(tenantId, { actor: input.actor, cause: input.rule === 'staff' ? 'staff' : 'customer', reason: input.reason ?? null });
    const claimed = await claimDestruction(deps, tenantId, input.rule, input.actor, clock.now(), { leased: true });
    if (!claimed) {
      const current = await repo.find(tenantId);
      if (current && (current.state === 'destroying' || current.state === 'destroyed')) return current; // another node won: same outcome
      throw conflict('tenant_not_cancelled', 'This tenant cannot be destroyed in its current state.', { state: (await tenants.get(tenantId)).state });
    }
    return runDestructionSteps(deps, claimed);
  }

  async function certificateOf(tenantId: string): Promise<DeletionCertificate> {
    const row = await repo.find(tenantId);
    if (!row || (row.state !== 'destroying' && row.state !== 'destroyed')) throw conflict('tenant_not_destroyed', 'A deletion certificate exists once the tenant is destroyed.');
    return buildCertificate(row, await repo.remainingBackups(tenantId), clock.now());
  }

  return {
    cancel,
    reactivate,
    destroyNow,

    /** DELETE /tenants/{id}: an owner or administrator cancels the tenant. */
    async cancelForMember(principal: Principal, tenantId: string, input: { actor: TenantActor; reason?: string | null }): Promise<DeletionRow> {
      await tenantFor(principal, tenantId, MANAGERS);
      return cancel(tenantId, { actor: input.actor, cause: 'customer', reason: input.reason ?? null });
    },

    /** The owner reactivates a cancelled tenant within its grace period. */
    async reactivateForMember(principal: Principal, tenantId: string, actor: TenantActor): Promise<DeletionRow> {
      await tenantFor(principal, tenantId, OWNER);
      return reactivate(tenantId, actor);
    },

    /** The owner destroys the tenant now; `confirm` must be its name exactly as typed. */
    async destroyForMember(principal: Principal, tenantId: string, input: { actor: TenantActor; confirm: string }): Promise<DeletionRow> {
      const tenant = await tenantFor(principal, tenantId, OWNER);
      if (tenant.state === 'destroyed') throw conflict('tenant_destroyed', 'This tenant is already destroyed.');
      if (input.confirm !== tenant.name) throw badRequest('confirmation_mismatch', 'Type the exact name of the tenant to confirm its destruction.');
      return destroyNow(tenantId, { actor: input.actor, rule: 'customer_request' });
    },

    /** Staff admin: destroys a tenant now (typed name and a reason). */
    async destroyForStaff(tenantId: string, input: { actor: TenantActor; confirm: string; reason: string }): Promise<DeletionRow> {
      if (!isUuid(tenantId)) throw tenantNotFound();
      const tenant = await tenants.get(tenantId);
      if (input.confirm !== tenant.name) throw badRequest('confirmation_mismatch', 'Type the exact name of the tenant to confirm its destruction.');
      if (!cleanReason(input.reason)) throw badRequest('reason_required', 'Say why the tenant is destroyed.');
      return destroyNow(tenantId, { actor: input.actor, rule: 'staff', reason: input.reason });
    },

    /** The certificate for an owner or administrator of the tenant's customer. */
    async certificateForMember(principal: Principal, tenantId: string): Promise<DeletionCertificate> {
      await tenantFor(principal, tenantId, MANAGERS);
      return certificateOf(tenantId);
    },

    /** Staff and the operator's records: any tenant's certificate. */
    certificate: async (tenantId: string) => {
      if (!isUuid(tenantId)) throw tenantNotFound();
      return certificateOf(tenantId);
    },

    find: (tenantId: string) => (isUuid(tenantId) ? repo.find(tenantId) : Promise.resolve(undefined)),
  };
}

export type DeletionService = ReturnType<typeof createDeletionService>;
