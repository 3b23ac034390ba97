/**
 * OPS-2: liveness (`/healthz`: the process answers), readiness (`/readyz`: the control-plane
 * database and every dependency the node needs answer; a load balancer stops routing here
 * otherwise) and Prometheus metrics (`/metrics`).
 */
import type { FastifyInstance } from 'fastify';
import type { Metrics } from './metrics.ts';

export function registerHealthRoutes(app: FastifyInstance, deps: { metrics: Metrics; readiness: () => Promise<Record<string, boolean>> }): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const checks = await deps.readiness().catch(() => ({ database: false }));
    const ready = Object.values(checks).every(Boolean);
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
}
