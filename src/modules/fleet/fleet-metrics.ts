/** Prometheus gauges of the fleet (OPS-2): tenant connections of this node, databases per server. */
import { Gauge, type Registry } from 'prom-client';
import type { Db } from '../../db/db.ts';
import * as repo from './fleet-repo.ts';
import type { ConnectionStats } from './connections.ts';

export function registerFleetMetrics(registry: Registry, deps: { db: Db; stats: () => ConnectionStats }): void {
  new Gauge({
    name: 'havre_tenant_connections_open',
    help: 'Connections to tenant databases open on this node (capped by tenants.connections.globalMax).',
    registers: [registry],
    collect() {
      this.set(deps.stats().total);
    },
  });
  new Gauge({
    name: 'havre_tenant_connection_pools',
    help: 'Per-tenant connection pools kept on this node.',
    registers: [registry],
    collect() {
      this.set(deps.stats().pools);
    },
  });
  new Gauge({
    name: 'havre_tenant_connections_waiting',
    help: 'Requests waiting for a tenant connection slot at the global cap.',
    registers: [registry],
    collect() {
      this.set(deps.stats().waiting);
    },
  });
  new Gauge({
    name: 'havre_fleet_pooled_databases',
    help: 'Ready (pooled) tenant databases per database server.',
    labelNames: ['server', 'region'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await repo.countPooledByServer(deps.db).catch(() => []);
      for (const r of rows) this.set({ server: r.name, region: r.region }, r.pooled);
    },
  });
}
