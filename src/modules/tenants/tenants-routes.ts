/**
 * HTTP routes of tenants: thin — validate, authorize, call the service, present.
 * Members: `/api/v1/tenants…` (404 `tenant_not_found` for any id outside their customers, TEN-1).
 * Staff: `/api/v1/admin/tenants…` (admin and billing may suspend and resume).
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireStaff, requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { TENANT_STATES } from './tenant-states.ts';
import {
  adminTenantView,
  adminTransitionView,
  presentAdminTenant,
  presentAdminTransition,
  presentTenant,
  presentTransition,
  tenantView,
  transitionView,
} from './tenants-presenters.ts';
import { actorOfPrincipal, type TenantsService } from './tenants-service.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const staffSecurity: Record<string, string[]>[] = [{ session: [] }];

/** Any string: a malformed id is answered like an unknown one (404), never a 400 that tells them apart. */
const idParams = z.strictObject({ id: z.string().max(200) });

const createBody = z.strictObject({
  customerId: z.uuid().optional().describe('Default: the one customer you own or administer'),
  name: z.string().trim().min(1).max(100),
  region: z.string().min(1).max(20).optional().describe('Region code, e.g. "fr" or "de" (default: the configured default region)'),
});

const createHeaders = z.object({
  'idempotency-key': z.string().min(1).max(200).optional().describe('Retry-safe creation: the same key (for the same customer) returns the same tenant'),
});

const reasonBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });
// Fastify gives a bodiless POST a null body: accept none at all.
const resumeBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() }).nullish();

const adminListQuery = z.strictObject({
  customerId: z.string().max(200).optional(),
  state: z.enum(TENANT_STATES).optional(),
  region: z.string().max(20).optional(),
});

function actor(request: FastifyRequest) {
  return actorOfPrincipal(requireUser(request), request.ip);
}

export function tenantsRoutes(service: TenantsService): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['tenants'];

    r.post(
      '/api/v1/tenants',
      {
        schema: {
          tags,
          summary: 'Create a tenant (owner/administrator, verified e-mail): a dedicated database in the chosen region, starting its trial',
          body: createBody,
          headers: createHeaders,
          security,
          response: { 200: tenantView, 201: tenantView },
        },
      },
      async (request, reply) => {
        const { tenant, created } = await service.create({
          ...request.body,
          idempotencyKey: request.headers['idempotency-key'],
          actor: actor(request),
        });
        if (!created) reply.header('idempotent-replayed', 'true');
        return reply.status(created ? 201 : 200).send(presentTenant(tenant));
      },
    );

    r.get('/api/v1/tenants', { schema: { tags, summary: 'The tenants of every customer I belong to', security, response: { 200: z.object({ tenants: z.array(tenantView) }) } } }, async (request) => ({
      tenants: (await service.listForMember(requireUser(request))).map(presentTenant),
    }));

    r.get('/api/v1/tenants/:id', { schema: { tags, summary: 'A tenant: region, server, state, creation, plan and trial end', params: idParams, security, response: { 200: tenantView } } }, async (request) =>
      presentTenant(await service.getForMember(requireUser(request), request.params.id)),
    );

    r.get(
      '/api/v1/tenants/:id/transitions',
      { schema: { tags, summary: 'The lifecycle history of a tenant (TEN-3)', params: idParams, security, response: { 200: z.object({ transitions: z.array(transitionView) }) } } },
      async (request) => ({ transitions: (await service.transitionsForMember(requireUser(request), request.params.id)).map(presentTransition) }),
    );

    const adminTags = ['admin'];

    r.get(
      '/api/v1/admin/tenants',
      { schema: { tags: adminTags, summary: 'All tenants, optionally by customer, state or region (staff)', querystring: adminListQuery, security: staffSecurity, response: { 200: z.object({ tenants: z.array(adminTenantView) }) } } },
      async (request) => {
        requireStaff(request);
        return { tenants: (await service.list(request.query)).map(presentAdminTenant) };
      },
    );

    r.get(
      '/api/v1/admin/tenants/:id',
      { schema: { tags: adminTags, summary: 'A tenant with its lifecycle history (staff)', params: idParams, security: staffSecurity, response: { 200: adminTenantView.extend({ transitions: z.array(adminTransitionView) }) } } },
      async (request) => {
        requireStaff(request);
        const tenant = await service.get(request.params.id);
        return { ...presentAdminTenant(tenant), transitions: (await service.transitions(tenant.id)).map(presentAdminTransition) };
      },
    );

    r.post(
      '/api/v1/admin/tenants/:id/suspend',
      { schema: { tags: adminTags, summary: 'Suspend a tenant in trial or active (staff admin/billing)', params: idParams, body: reasonBody, security: staffSecurity, response: { 200: adminTenantView } } },
      async (request) => {
        requireStaff(request, ['admin', 'billing']);
        return presentAdminTenant(await service.suspend(request.params.id, { actor: actor(request), reason: request.body.reason }));
      },
    );

    r.post(
      '/api/v1/admin/tenants/:id/resume',
      { schema: { tags: adminTags, summary: 'Resume a suspended or reactivate a cancelled tenant (staff admin/billing)', params: idParams, body: resumeBody, security: staffSecurity, response: { 200: adminTenantView } } },
      async (request) => {
        requireStaff(request, ['admin', 'billing']);
        return presentAdminTenant(await service.resume(request.params.id, { actor: actor(request), reason: request.body?.reason ?? null }));
      },
    );
  };
}
