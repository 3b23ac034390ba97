/**
 * HTTP routes of the deletion lifecycle: thin — validate, authorize (in the service), present.
 *
 *   DELETE /api/v1/tenants/{id}                          cancel (owner/administrator)
 *   POST   /api/v1/tenants/{id}/reactivate               within the grace period (owner)
 *   POST   /api/v1/tenants/{id}/destroy {confirm}        immediate destruction, typed name (owner)
 *   GET    /api/v1/tenants/{id}/deletion-certificate     JSON, or ?format=text|html, FR/EN (owner/administrator)
 *   POST   /api/v1/admin/tenants/{id}/cancel {reason}    staff admin/billing
 *   POST   /api/v1/admin/tenants/{id}/destroy {confirm, reason}   staff admin
 *   GET    /api/v1/admin/tenants/{id}/deletion-certificate        staff (the operator's records)
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireStaff, requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';
import { actorOfPrincipal } from '../tenants/tenants-service.ts';
import { renderCertificateHtml, renderCertificateText, type DeletionCertificate } from './deletion-certificate.ts';
import { presentDeletion, type DeletionService } from './deletion-service.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const staffSecurity: Record<string, string[]>[] = [{ session: [] }];
const idParams = z.strictObject({ id: z.string().max(200) });
const isoDate = z.string().describe('ISO 8601 date-time (UTC)');

const deletionView = z.object({
  tenantId: z.uuid(),
  state: z.enum(['pending', 'reactivated', 'destroying', 'destroyed']).describe('pending = cancelled, in its grace period'),
  cancelledAt: isoDate,
  cause: z.enum(['customer', 'contract_end', 'trial_expired', 'staff']),
  destroyAfter: isoDate.describe('End of the grace period: the tenant is destroyed after this'),
  destroyedAt: isoDate.nullable(),
  rule: z.enum(['grace_period_expired', 'customer_request', 'staff']).nullable(),
});

// Fastify gives a bodiless request a null body: accept none at all.
const cancelBody = z.strictObject({ reason: z.string().trim().min(1).max(500).optional() }).nullish();
const destroyBody = z.strictObject({ confirm: z.string().max(200).describe('The exact name of the tenant') });
const staffCancelBody = z.strictObject({ reason: z.string().trim().min(1).max(500) });
const staffDestroyBody = z.strictObject({ confirm: z.string().max(200), reason: z.string().trim().min(1).max(500) });
const certificateQuery = z.strictObject({
  format: z.enum(['json', 'text', 'html']).optional().describe('json (default), text or html'),
  lang: z.enum(['fr', 'en']).optional().describe('Language of text/html (default: Accept-Language)'),
});

function actor(request: FastifyRequest) {
  return actorOfPrincipal(requireUser(request), request.ip);
}

function sendCertificate(request: FastifyRequest, query: z.infer<typeof certificateQuery>, reply: FastifyReply, certificate: DeletionCertificate) {
  const locale = localeFromAcceptLanguage(request.headers['accept-language'], query.lang);
  const file = `havre-deletion-certificate-${certificate.tenant.id}`;
  if (query.format === 'text') return reply.type('text/plain; charset=utf-8').header('content-disposition', `inline; filename="${file}.txt"`).send(renderCertificateText(certificate, locale));
  if (query.format === 'html') return reply.type('text/html; charset=utf-8').header('content-disposition', `inline; filename="${file}.html"`).send(renderCertificateHtml(certificate, locale));
  return reply.send(certificate);
}

export function deletionRoutes(service: DeletionService): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['tenants'];
    const adminTags = ['admin'];

    r.delete(
      '/api/v1/tenants/:id',
      { schema: { tags, summary: 'Cancel a tenant (owner/administrator): closed at once, exportable and reactivable during the grace period, then destroyed (TEN-4)', params: idParams, body: cancelBody, security, response: { 200: deletionView } } },
      async (request) => presentDeletion(await service.cancelForMember(requireUser(request), request.params.id, { actor: actor(request), reason: request.body?.reason ?? null })),
    );

    r.post(
      '/api/v1/tenants/:id/reactivate',
      { schema: { tags, summary: 'Reactivate a cancelled tenant within its grace period (owner)', params: idParams, security, response: { 200: deletionView } } },
      async (request) => presentDeletion(await service.reactivateForMember(requireUser(request), request.params.id, actor(request))),
    );

    r.post(
      '/api/v1/tenants/:id/destroy',
      { schema: { tags, summary: 'Destroy a tenant now (owner; confirm = the tenant name as typed): database, role and files deleted (TEN-4)', params: idParams, body: destroyBody, security, response: { 200: deletionView } } },
      async (request) => presentDeletion(await service.destroyForMember(requireUser(request), request.params.id, { actor: actor(request), confirm: request.body.confirm })),
    );

    r.get(
      '/api/v1/tenants/:id/deletion-certificate',
      { schema: { tags, summary: 'The deletion certificate of a destroyed tenant (owner/administrator; JSON, text or HTML, FR/EN) (TEN-5)', params: idParams, querystring: certificateQuery, security } },
      async (request, reply) => sendCertificate(request, request.query, reply, await service.certificateForMember(requireUser(request), request.params.id)),
    );

    r.post(
      '/api/v1/admin/tenants/:id/cancel',
      { schema: { tags: adminTags, summary: 'Cancel a tenant with a reason (staff admin/billing)', params: idParams, body: staffCancelBody, security: staffSecurity, response: { 200: deletionView } } },
      async (request) => {
        requireStaff(request, ['admin', 'billing']);
        return presentDeletion(await service.cancel(request.params.id, { actor: actor(request), cause: 'staff', reason: request.body.reason }));
      },
    );

    r.post(
      '/api/v1/admin/tenants/:id/destroy',
      { schema: { tags: adminTags, summary: 'Destroy a tenant now (staff admin; typed name and reason)', params: idParams, body: staffDestroyBody, security: staffSecurity, response: { 200: deletionView } } },
      async (request) => {
        requireStaff(request, ['admin']);
        return presentDeletion(await service.destroyForStaff(request.params.id, { actor: actor(request), confirm: request.body.confirm, reason: request.body.reason }));
      },
    );

    r.get(
      '/api/v1/admin/tenants/:id/deletion-certificate',
      { schema: { tags: adminTags, summary: "A tenant's deletion certificate (staff; the operator's records)", params: idParams, querystring: certificateQuery, security: staffSecurity } },
      async (request, reply) => {
        requireStaff(request);
        return sendCertificate(request, request.query, reply, await service.certificate(request.params.id));
      },
    );
  };
}
