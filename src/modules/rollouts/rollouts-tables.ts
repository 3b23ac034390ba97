/** Control-plane tables of the rollouts module (see migrations/20261124130000_rollouts.sql). */
import type { AuditActorType } from '../audit/audit-tables.ts';

export type RolloutState = 'running' | 'succeeded' | 'failed';
export const ITEM_STATES = ['pending', 'running', 'done', 'failed', 'deferred', 'skipped'] as const;
export type RolloutItemState = (typeof ITEM_STATES)[number];

export interface WorkspaceReleasesTable {
  version: number;
  /** Starts the SEC-5 clock: the first rollout of this version, or a date given by the operator. */
  released_at: Date;
  /** A security fix (SEC-5). Raised, never lowered. */
  security: boolean;
  security_marked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export interface SecurityDeferralsTable {
  id: string;
  tenant_id: string;
  release_version: number;
  /** Reference or summary of the customer's written request. */
  reference: string;
  /** Last Paris day of the deferral (`YYYY-MM-DD`); null: until further notice. */
  until: string | null;
  recorded_by_type: AuditActorType;
  recorded_by_id: string | null;
  recorded_at: Date;
}

export interface RolloutsTable {
  id: string;
  target_version: number;
  state: RolloutState;
  security: boolean;
  batch_size: number;
  concurrency: number;
  max_attempts: number;
  notices_sent: number;
  notice_until: Date | null;
  actor_type: AuditActorType;
  actor_id: string | null;
  created_at: Date;
  finished_at: Date | null;
}

export interface RolloutItemsTable {
  rollout_id: string;
  tenant_database_id: string;
  position: number;
  state: RolloutItemState;
  from_version: number;
  to_version: number;
  attempts: number;
  last_error: string | null;
  not_before: Date | null;
  next_attempt_at: Date | null;
  leased_until: Date | null;
  worker_id: string | null;
  deferral_id: string | null;
  started_at: Date | null;
  finished_at: Date | null;
}

export interface RolloutsTables {
  workspace_releases: WorkspaceReleasesTable;
  security_deferrals: SecurityDeferralsTable;
  rollouts: RolloutsTable;
  rollout_items: RolloutItemsTable;
}
