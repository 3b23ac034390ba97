/**
 * HTTP routes of exports and imports (EXP-1..3), for the tenant's owners and administrators only;
 * staff and strangers get 404 (no membership), as for backups.
 *
 *   POST /api/v1/tenants/{id}/exports                      202: an export starts on this node (409 when one runs)
 *   GET  /api/v1/tenants/{id}/exports                      the latest exports with their progress
 *   GET  /api/v1/tenants/{id}/exports/{eid}                one export: state, progress, size
 *   POST /api/v1/tenants/{id}/exports/{eid}/download-link  a signed, expiring link
 *   GET  /api/v1/export-downloads?token=…                  the archive (the token is the credential)
 *   POST /api/v1/tenants/{id}/imports                      an export archive as the raw body → into this empty tenant
 *   POST /api/v1/tenants/{id}/imports/csv?table=&mapping=  a CSV file as the raw body → one table, or a 400 report
 *
 * The import routes live in their own scope whose only content-type parser hands over the raw
 * stream; the body is spooled to a file on this node (counted against `portability.importMaxBytes`)
 * before any database work, so no transaction waits on a slow upload.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { badRequest, notFound } from '../../lib/errors.ts';
import { isUuid } from '../../lib/ids.ts';
import { authorizeMember, MANAGERS } from '../accounts/membership.ts';
import type { PortabilityModuleApi } from './index.ts';
import { CSV_TABLES } from './import-csv.ts';
import { exportView, presentExport } from './portability-presenters.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const tags = ['portability'];
const tenantParams = z.strictObject({ id: z.string().max(200) });
const exportParams = z.strictObject({ id: z.string().max(200), eid: z.string().max(200) });
const csvQuery = z.strictObject({
  table: z.enum(Object.keys(CSV_TABLES) as [string, ...string[]]).describe('The record kind the lines become'),
  mapping: z.string().max(20_000).optional().describe('JSON object: CSV header → API field name (e.g. {"Nom":"lastName"}); default: headers that are field names'),
});
const importView = z.object({ tables: z.array(z.object({ name: z.string(), rows: z.number().int() })), attachments: z.number().int() });
const csvReportView = z.object({ table: z.string(), rowsRead: z.number().int(), errorCount: z.number().int(), errors: z.array(z.object({ line: z.number().int(), field: z.string().optional(), column: z.string().optional(), code: z.string(), message: z.string() })) });

/** The mapping query parameter, parsed: a JSON object of strings. */
function parseMapping(raw: string | undefined): Record<string, string> | undefined {
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw badRequest('csv_mapping_invalid', 'mapping must be a JSON object: {"CSV header": "field"}.');
  }
  const parsed = z.record(z.string().max(200), z.string().max(100)).safeParse(value);
  if (!parsed.success) throw badRequest('csv_mapping_invalid', 'mapping must be a JSON object: {"CSV header": "field"}.');
  return parsed.data;
}

export function portabilityRoutes(api: PortabilityModuleApi): RoutePlugin {
  const { db } = api;

  /** A tenant (not destroyed) of one of the caller's customers where the caller is owner or administrator; 404 otherwise. */
  async function tenantFor(request: FastifyRequest, id: string) {
    const principal = requireUser(request);
    const tenant = isUuid(id) ? await db.selectFrom('tenants').select(['id', 'customer_id']).where('id', '=', id).where('state', '!=', 'destroyed').executeTakeFirst() : undefined;
    if (!tenant) throw notFound('tenant_not_found', 'No such tenant.');
    await authorizeMember(db, principal, tenant.customer_id, MANAGERS, 'tenant_not_found');
    return { tenant, principal, actor: { type: 'user' as const, id: principal.userId, ip: request.ip } };
  }

  return async (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();

    r.post('/api/v1/tenants/:id/exports', { schema: { tags, summary: 'Export the whole tenant (CSV, JSON, XML, XLSX, attachments) into one archive; runs in the background', params: tenantParams, security, response: { 202: exportView } } }, async (request, reply) => {
      const { tenant, principal, actor } = await tenantFor(request, request.params.id);
      const { row } = await api.exports.start(tenant.id, { requestedBy: principal.userId, locale: principal.locale, actor });
      return reply.code(202).send(presentExport(row));
    });

    r.get('/api/v1/tenants/:id/exports', { schema: { tags, summary: 'The latest exports of a tenant, newest first', params: tenantParams, security, response: { 200: z.object({ items: z.array(exportView) }) } } }, async (request) => {
      const { tenant } = await tenantFor(request, request.params.id);
      return { items: (await api.exports.list(tenant.id)).map(presentExport) };
    });

    r.get('/api/v1/tenants/:id/exports/:eid', { schema: { tags, summary: 'One export: state, progress, size', params: exportParams, security, response: { 200: exportView } } }, async (request) => {
      const { tenant } = await tenantFor(request, request.params.id);
      if (!isUuid(request.params.eid)) throw notFound('export_not_found', 'No such export.');
      return presentExport(await api.exports.get(tenant.id, request.params.eid));
    });

    r.post(
      '/api/v1/tenants/:id/exports/:eid/download-link',
      { schema: { tags, summary: 'A signed link to download a complete export (expires)', params: exportParams, security, response: { 201: z.object({ url: z.string(), expiresAt: z.string() }) } } },
      async (request, reply) => {
        const { tenant, principal, actor } = await tenantFor(request, request.params.id);
        if (!isUuid(request.params.eid)) throw notFound('export_not_found', 'No such export.');
        const row = await api.exports.get(tenant.id, request.params.eid);
        return reply.code(201).send(await api.exports.downloadLink(row, principal.userId, actor));
      },
    );

    r.get('/api/v1/export-downloads', { schema: { tags, summary: 'Download an export through a signed link', querystring: z.strictObject({ token: z.string().min(1).max(2000) }) } }, async (request, reply) => {
      const { stream, size, fileName, sha256 } = await api.exports.download(request.query.token, request.ip);
      return reply
        .header('content-type', 'application/zip')
        .header('content-length', String(size))
        .header('content-disposition', `attachment; filename="${fileName}"`)
        .header('digest', `sha-256=${Buffer.from(sha256, 'hex').toString('base64')}`)
        .header('cache-control', 'no-store')
        .send(stream);
    });

    await app.register(async (imports) => {
      // Raw bodies of any type, as a stream, for this scope only.
      const bodies = new WeakMap<FastifyRequest, Readable>();
      imports.removeAllContentTypeParsers();
      imports.addContentTypeParser('*', (request, payload, done) => {
        bodies.set(request, payload);
        done(null, undefined);
      });
      const ri = imports.withTypeProvider<ZodTypeProvider>();

      ri.post(
        '/api/v1/tenants/:id/imports',
        { schema: { tags, summary: 'Import an export archive (the raw zip as the body) into this new, empty tenant — all or nothing', params: tenantParams, security, response: { 200: importView } } },
        async (request, reply) => {
          const { tenant, actor } = await tenantFor(request, request.params.id);
          const stream = bodies.get(request) ?? request.raw;
          try {
            return await api.withSpooledBody(stream, (file) => api.importArchive(tenant.id, file, actor));
          } catch (err) {
            if (!stream.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );

      ri.post(
        '/api/v1/tenants/:id/imports/csv',
        {
          schema: {
            tags,
            summary: 'Import one table from a CSV file made by another tool (the raw CSV as the body), with a column mapping — all or nothing',
            description: 'Every line is checked with the same rules as the API. With any error nothing is written and the answer is 400 csv_import_invalid with `report` (per line: field, code, message).',
            params: tenantParams,
            querystring: csvQuery,
            security,
            response: { 200: csvReportView },
          },
        },
        async (request, reply) => {
          // Membership first: nobody else gets to upload a byte.
          const { principal } = await tenantFor(request, request.params.id);
          const mapping = parseMapping(request.query.mapping);
          const stream = bodies.get(request) ?? request.raw;
          try {
            return await api.withSpooledBody(stream, (file) => api.importCsv(principal, request.params.id, request.query.table, file, mapping, request.ip));
          } catch (err) {
            if (!stream.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );
    });
  };
}
