/** Control-plane tables of the fleet module (see migrations/20261123120000_fleet.sql). */

export type ServerStatus = 'active' | 'draining';
export type TenantDatabaseState = 'creating' | 'pooled' | 'assigned' | 'dropping' | 'dropped';

export interface DatabaseServersTable {
  id: string;
  name: string;
  region: string;
  /** SEC-3: the admin connection URL sealed with the master key, context `server:<id>`. */
  admin_url_sealed: string;
  /** host:port, for display only (no credentials). */
  address: string;
  max_tenants: number;
  status: ServerStatus;
  /** e.g. 150018 (server_version_num when registered). */
  server_version_num: number;
  created_at: Date;
  updated_at: Date;
}

export interface TenantDatabasesTable {
  id: string;
  server_id: string;
  database_name: string;
  role_name: string;
  /** SEC-3: the tenant role's password sealed with the master key, context `tenant-db:<id>`. */
  role_password_sealed: string;
  state: TenantDatabaseState;
  created_at: Date;
  updated_at: Date;
  assigned_at: Date | null;
  dropped_at: Date | null;
  /** TEN-6: the workspace schema version last applied (the truth is `havre_meta` inside the database). */
  schema_version: number;
}

export interface FleetTables {
  database_servers: DatabaseServersTable;
  tenant_databases: TenantDatabasesTable;
}
