/**
 * HTTP routes of backups (BKP-5), for the customer's members only — staff have no membership, so
 * every route answers them 404 like any stranger: the operator cannot download a customer's backup.
 *
 *   GET  /api/v1/tenants/{id}/backups                      any member: complete backups
 *   POST /api/v1/tenants/{id}/backups                      owner/administrator: take one now
 *   GET  /api/v1/tenants/{id}/backups/{bid}                any member
 *   POST /api/v1/tenants/{id}/backups/{bid}/download-link  owner/administrator: a signed link
 *   GET  /api/v1/backup-downloads?token=…                  the link itself (the token is the credential)
 *   POST /api/v1/tenants/{id}/backups/{bid}/restore        owner/administrator: {mode, confirm}
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { isUuid } from '../../lib/ids.ts';
import { AppError, notFound } from '../../lib/errors.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';
import { ALL_ROLES, authorizeMember, MANAGERS } from '../accounts/membership.ts';
import type { MemberRole } from '../accounts/accounts-tables.ts';
import type { BackupsModuleApi } from './index.ts';
import { backupView, presentBackup, presentRestore, restoreView } from './backups-presenters.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const tenantParams = z.strictObject({ id: z.string().max(200) });
const backupParams = z.strictObject({ id: z.string().max(200), bid: z.string().max(200) });
const restoreBody = z.strictObject({
  mode: z.enum(['new', 'in-place']).default('new').describe('"new" (default): into a new tenant; "in-place": replaces this tenant\'s data after a safety backup'),
  confirm: z.string().max(200).optional().describe('In place: the tenant name, typed'),
});

export function backupsRoutes(api: BackupsModuleApi): RoutePlugin {
  const { db } = api;

  /** The tenant (not destroyed) of one of the caller's customers with one of `roles`; 404 otherwise. */
  async function tenantFor(request: FastifyRequest, id: string, roles: MemberRole[]) {
    const principal = requireUser(request);
    const tenant = isUuid(id) ? await db.selectFrom('tenants').select(['id', 'customer_id', 'name']).where('id', '=', id).where('state', '!=', 'destroyed').executeTakeFirst() : undefined;
    if (!tenant) throw notFound('tenant_not_found');
    await authorizeMember(db, principal, tenant.customer_id, roles, 'tenant_not_found');
    return { tenant, principal, actor: { type: 'user' as const, id: principal.userId, ip: request.ip } };
  }

  async function backupOf(tenantId: string, bid: string) {
    const backup = isUuid(bid) ? await api.repo.get(bid) : undefined;
    if (!backup || backup.tenant_id !== tenantId || backup.state !== 'complete') throw notFound('backup_not_found', 'No such backup.');
    return backup;
  }

  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['backups'];

    r.get('/api/v1/tenants/:id/backups', { schema: { tags, summary: 'List the complete backups of a tenant (newest first)', params: tenantParams, security, response: { 200: z.object({ items: z.array(backupView) }) } } }, async (request) => {
      const { tenant } = await tenantFor(request, request.params.id, ALL_ROLES);
      const rows = await api.repo.listForTenant(tenant.id, { states: ['complete'] });
      return { items: await Promise.all(rows.map(async (b) => presentBackup(b, await api.repo.copies(b.id)))) };
    });

    r.post('/api/v1/tenants/:id/backups', { schema: { tags, summary: 'Take a backup now (limited per day)', params: tenantParams, security, response: { 201: backupView } } }, async (request, reply) => {
      const { tenant, actor } = await tenantFor(request, request.params.id, MANAGERS);
      const backup = await api.service.takeOnDemand(tenant.id, actor);
      if (backup.state !== 'complete') throw new AppError(503, 'backup_failed', 'The backup could not be completed; the operator was alerted and it is retried automatically.');
      return reply.code(201).send(presentBackup(backup, await api.repo.copies(backup.id)));
    });

    r.get('/api/v1/tenants/:id/backups/:bid', { schema: { tags, summary: 'Read one backup', params: backupParams, security, response: { 200: backupView } } }, async (request) => {
      const { tenant } = await tenantFor(request, request.params.id, ALL_ROLES);
      const backup = await backupOf(tenant.id, request.params.bid);
      return presentBackup(backup, await api.repo.copies(backup.id));
    });

    r.post(
      '/api/v1/tenants/:id/backups/:bid/download-link',
      { schema: { tags, summary: 'A signed link to download the backup (expires)', params: backupParams, security, response: { 201: z.object({ url: z.string(), expiresAt: z.string() }) } } },
      async (request, reply) => {
        const { tenant, principal, actor } = await tenantFor(request, request.params.id, MANAGERS);
        const backup = await backupOf(tenant.id, request.params.bid);
        const link = await api.downloadLink(backup, principal.userId, actor);
        return reply.code(201).send(link);
      },
    );

    r.get('/api/v1/backup-downloads', { schema: { tags, summary: 'Download a backup through a signed link', querystring: z.strictObject({ token: z.string().min(1).max(2000) }) } }, async (request, reply) => {
      const { stream, fileName } = await api.download(request.query.token, localeFromAcceptLanguage(request.headers['accept-language']), request.ip);
      return reply.header('content-type', 'application/x-tar').header('content-disposition', `attachment; filename="${fileName}"`).header('cache-control', 'no-store').send(stream);
    });

    r.post(
      '/api/v1/tenants/:id/backups/:bid/restore',
      { schema: { tags, summary: 'Restore a backup into a new tenant (default) or in place', params: backupParams, body: restoreBody, security, response: { 200: restoreView } } },
      async (request) => {
        const { tenant, actor } = await tenantFor(request, request.params.id, MANAGERS);
        const backup = await backupOf(tenant.id, request.params.bid);
        const restored = await api.restore.restore(tenant.id, { backupId: backup.id, mode: request.body.mode, ...(request.body.confirm !== undefined && { confirm: request.body.confirm }), actor });
        return presentRestore(restored);
      },
    );
  };
}
