/**
 * Operator API of rollouts (staff only, `/api/v1/admin/…`): start a rollout (it runs in the
 * background on this node), follow it, list rollouts, read a release's SEC-5 report, and record a
 * customer's written request to defer a security release. Thin: validate, authorize, call, present.
 */
import { z } from 'zod';
import { requireStaff } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { deferralView, presentDeferral, presentDetails, presentReport, presentRollout, reportView, rolloutDetailsView, rolloutView } from './rollouts-presenters.ts';
import type { SecurityService } from './rollouts-security.ts';
import type { RolloutActor, RolloutService } from './rollouts-service.ts';

const staffSecurity: Record<string, string[]>[] = [{ session: [] }];
/** Any string: a malformed id is answered like an unknown one (404). */
const idParams = z.strictObject({ id: z.string().max(200) });
const versionParams = z.strictObject({ version: z.coerce.number().int().min(1).max(100_000) });
const parisDay = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'a date, YYYY-MM-DD');

// Fastify gives a bodiless POST a null body: accept none at all.
const startBody = z
  .strictObject({
    targetVersion: z.number().int().min(1).optional().describe('Default: the latest version this Havre ships'),
    batchSize: z.number().int().min(1).max(1000).optional(),
    concurrency: z.number().int().min(1).max(64).optional(),
    security: z.boolean().optional().describe('Marks the release as a security fix (SEC-5); a release once marked stays marked'),
    releasedAt: z.iso.datetime({ offset: true }).optional().describe('When the fix was released, if before this first rollout (moves the SEC-5 clock earlier, never later)'),
  })
  .nullish();

const deferralBody = z.strictObject({
  version: z.number().int().min(1).max(100_000).describe('The release version the customer asked to defer'),
  reference: z.string().trim().min(1).max(500).describe('Reference or summary of the written request (letter, e-mail, ticket)'),
  until: parisDay.nullable().optional().describe('Last day (Paris) the request covers; absent: until further notice'),
});

const listQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).optional(),
  running: z.enum(['true', 'false']).optional(),
});

function actorOf(principal: { userId: string }, ip: string): RolloutActor {
  return { type: 'staff', id: principal.userId, ip };
}

export function rolloutsRoutes(deps: { service: RolloutService; security: SecurityService; runInBackground: (rolloutId: string) => void }): RoutePlugin {
  const { service, security } = deps;
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['admin', 'rollouts'];

    r.post(
      '/api/v1/admin/rollouts',
      {
        schema: {
          tags,
          summary: 'Start rolling out a workspace schema version to every tenant database (staff admin); it runs in the background (TEN-6)',
          body: startBody,
          security: staffSecurity,
          response: { 202: rolloutView, 200: z.object({ targetVersion: z.number().int(), nothingToDo: z.literal(true) }) },
        },
      },
      async (request, reply) => {
        const principal = requireStaff(request, ['admin']);
        const body = request.body ?? {};
        const { rollout, release } = await service.start({
          ...(body.targetVersion !== undefined && { target: body.targetVersion }),
          ...(body.batchSize !== undefined && { batchSize: body.batchSize }),
          ...(body.concurrency !== undefined && { concurrency: body.concurrency }),
          ...(body.security !== undefined && { security: body.security }),
          ...(body.releasedAt !== undefined && { releasedAt: new Date(body.releasedAt) }),
          actor: actorOf(principal, request.ip),
        });
        if (!rollout) return reply.status(200).send({ targetVersion: release.version, nothingToDo: true as const });
        deps.runInBackground(rollout.id);
        const { counts } = await service.progress(rollout.id);
        return reply.status(202).send(presentRollout(rollout, counts));
      },
    );

    r.get(
      '/api/v1/admin/rollouts',
      { schema: { tags, summary: 'Rollouts, newest first, with their progress (staff)', querystring: listQuery, security: staffSecurity, response: { 200: z.object({ rollouts: z.array(rolloutView) }) } } },
      async (request) => {
        requireStaff(request);
        const list = await service.list({ ...(request.query.limit && { limit: request.query.limit }), running: request.query.running === 'true' });
        return { rollouts: list.map((x) => presentRollout(x.rollout, x.counts)) };
      },
    );

    r.get(
      '/api/v1/admin/rollouts/:id',
      { schema: { tags, summary: 'A rollout: progress counts, failed tenants with their error, deferred tenants (staff)', params: idParams, security: staffSecurity, response: { 200: rolloutDetailsView } } },
      async (request) => {
        requireStaff(request);
        return presentDetails(await service.progress(request.params.id));
      },
    );

    r.get(
      '/api/v1/admin/releases/:version/report',
      { schema: { tags, summary: 'SEC-5 report of a release: per tenant, when it was updated against the 5-business-day deadline (staff)', params: versionParams, security: staffSecurity, response: { 200: reportView } } },
      async (request) => {
        requireStaff(request);
        return presentReport(await security.report(request.params.version));
      },
    );

    r.post(
      '/api/v1/admin/tenants/:id/security-deferrals',
      {
        schema: {
          tags,
          summary: "Record a customer's written request to defer a security release for a tenant (staff admin; SEC-5)",
          params: idParams,
          body: deferralBody,
          security: staffSecurity,
          response: { 201: deferralView },
        },
      },
      async (request, reply) => {
        const principal = requireStaff(request, ['admin']);
        const row = await security.recordDeferral({ tenantId: request.params.id, version: request.body.version, reference: request.body.reference, until: request.body.until ?? null, actor: actorOf(principal, request.ip) });
        return reply.status(201).send(presentDeferral(row));
      },
    );
  };
}
