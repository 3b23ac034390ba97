/** Control-plane tables of the tenants module (see migrations/20261123130000_tenants.sql). */
import type { ColumnType } from 'kysely';
import type { AuditActorType } from '../audit/audit-tables.ts';
import type { TenantState } from './tenant-states.ts';

export interface TenantsTable {
  id: string;
  customer_id: string;
  name: string;
  region: string;
  state: TenantState;
  /** Null only while provisioning. */
  tenant_database_id: string | null;
  plan: string | null;
  trial_ends_at: Date | null;
  /** Idempotency-Key of the creating request, unique per customer. */
  idempotency_key: string | null;
  /** SHA-256 of the creating request's parameters, to refuse a key reused for another request. */
  idempotency_fingerprint: string | null;
  created_at: Date;
  updated_at: Date;
  state_changed_at: Date;
}

export interface TenantTransitionsTable {
  /** int8 identity; comes back as a string. */
  id: ColumnType<string, never, never>;
  tenant_id: string;
  /** Null for the creation of the tenant (→ provisioning). */
  from_state: TenantState | null;
  to_state: TenantState;
  reason: string | null;
  actor_type: AuditActorType;
  actor_id: string | null;
  at: Date;
}

export interface TenantsTables {
  tenants: TenantsTable;
  tenant_transitions: TenantTransitionsTable;
}

