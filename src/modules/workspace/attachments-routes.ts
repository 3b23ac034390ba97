/**
 * REST routes of attachments (APP-1):
 *   POST   /api/v1/tenants/{id}/attachments?fileName=…[&companyId=…|contactId|employeeId|invoiceId]
 *          the raw file as the body, its type as Content-Type → 201 (streamed, never buffered whole)
 *   GET    /api/v1/tenants/{id}/attachments                      list (generic record routes)
 *   GET    /api/v1/tenants/{id}/attachments/{recordId}           metadata
 *   GET    /api/v1/tenants/{id}/attachments/{recordId}/content   the file, streamed
 *   DELETE /api/v1/tenants/{id}/attachments/{recordId}           → 204 (row, then file)
 * Every member role may use them all (RECORD_ROLES, the access default).
 *
 * The upload is registered in its own encapsulated scope: there, and only there, any body type is
 * accepted and handed over as the raw stream (no parsing, no 1 MB JSON limit); the service counts
 * the bytes against `workspace.attachments.maxBytes`.
 */
import type { Readable } from 'node:stream';
import type { FastifyRequest } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';
import type { SwaggerTransform } from '@fastify/swagger';
import { z } from 'zod';
import { requireUser } from '../../http/auth.ts';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import type { Clock } from '../../lib/clock.ts';
import { attachmentSpec, SUBJECT_PARAMS, type AttachmentService } from './attachments-service.ts';
import { ALLOWED_MEDIA_TYPES, isTextType } from './attachments-sniff.ts';
import { recordOutputSchema } from './record-spec.ts';
import { recordRoutes } from './records-routes.ts';
import type { WorkspaceAccess } from './workspace-access.ts';

const security: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];
const tags = ['workspace'];
const binary = { type: 'string', format: 'binary' };

/**
 * `Content-Disposition: attachment` with the name twice (RFC 6266): an ASCII fallback, and the
 * exact name as UTF-8 percent-encoded (RFC 5987 `attr-char`s only) for every current browser.
 */
export function contentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(fileName).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/** True when an If-None-Match header names `etag` (or `*`); weak or strong, as RFC 9110 compares for GET. */
function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t.replace(/^W\//, '') === etag;
  });
}

/** Adds to the generated OpenAPI operation what zod cannot describe: binary bodies. */
function withBinary(parts: { body?: true; response200?: string }): SwaggerTransform {
  return (args) => {
    const out = jsonSchemaTransform(args);
    const schema: Record<string, unknown> = { ...(out.schema as Record<string, unknown>) };
    if (parts.body) schema.body = { content: Object.fromEntries(ALLOWED_MEDIA_TYPES.map((t) => [t, { schema: binary }])) };
    if (parts.response200) {
      schema.response = {
        ...(schema.response as Record<string, unknown> | undefined),
        200: { description: parts.response200, content: Object.fromEntries(ALLOWED_MEDIA_TYPES.map((t) => [t, { schema: binary }])) },
        304: { description: 'Not modified: the If-None-Match ETag (the SHA-256) is the file’s.' },
      };
    }
    return { ...out, schema };
  };
}

const subjectQuery = Object.fromEntries(SUBJECT_PARAMS.map((p) => [p, z.uuid().optional()]));
const uploadQuery = z.object({ fileName: z.string().min(1).max(1000), ...subjectQuery }).strict();
const tenantParams = z.object({ id: z.string().max(100) });
const itemParams = z.object({ id: z.string().max(100), recordId: z.string().max(100) });

/** Every attachment route (the list, read and delete ones are the generic record routes). */
export function workspaceAttachmentRoutes(access: WorkspaceAccess, service: AttachmentService, clock: Clock): RoutePlugin {
  const view = recordOutputSchema(attachmentSpec);
  const records = recordRoutes(attachmentSpec, access, clock, { afterDelete: (target, id) => service.afterDelete(target, id) });

  return async (app) => {
    await records(app);

    await app.register(async (uploads) => {
      // Raw bodies of any type, as a stream, for this scope only (the rest of the API takes JSON).
      const bodies = new WeakMap<FastifyRequest, Readable>();
      uploads.removeAllContentTypeParsers();
      uploads.addContentTypeParser('*', (request, payload, done) => {
        bodies.set(request, payload);
        done(null, undefined);
      });
      uploads.withTypeProvider<ZodTypeProvider>().post(
        '/api/v1/tenants/:id/attachments',
        {
          schema: {
            tags,
            summary: 'Upload an attachment (the raw file as the body, its type as Content-Type)',
            description:
              'Streams the body into the workspace’s storage. The Content-Type must be an allowed document, picture or video type and match the first bytes of the file ' +
              '(else 415 content_type_not_allowed / content_type_mismatch); a file larger than the configured maximum gets 413 attachment_too_large. ' +
              'Attach it to at most one record with companyId, contactId, employeeId or invoiceId.',
            params: tenantParams,
            querystring: uploadQuery,
            security,
            response: { 201: view },
          },
          config: { swaggerTransform: withBinary({ body: true }) },
        },
        async (request, reply) => {
          const stream = bodies.get(request) ?? request.raw;
          const length = request.headers['content-length'];
          const { fileName, ...subjects } = request.query;
          try {
            const created = await service.upload(requireUser(request), request.params.id, {
              fileName,
              contentType: request.headers['content-type'],
              declaredLength: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
              subjects,
              // Stopping early must not destroy the request: the error answer still has to go out.
              body: stream.iterator({ destroyOnReturn: false }),
            });
            return await reply.code(201).send(created);
          } catch (err) {
            // The rest of a refused body is not read: close the connection rather than drain it.
            if (!stream.readableEnded) reply.header('connection', 'close');
            throw err;
          }
        },
      );
    });

    app.withTypeProvider<ZodTypeProvider>().get(
      '/api/v1/tenants/:id/attachments/:recordId/content',
      {
        schema: { tags, summary: 'Download an attachment’s file (streamed; ETag = its SHA-256)', params: itemParams, security },
        config: { swaggerTransform: withBinary({ response200: 'The file, with its Content-Type, Content-Length and Content-Disposition: attachment.' }) },
      },
      async (request, reply) => {
        const { attachment, open } = await service.read(requireUser(request), request.params.id, request.params.recordId);
        const etag = `"${String(attachment.sha256)}"`;
        reply.header('etag', etag).header('cache-control', 'private, no-cache').header('x-content-type-options', 'nosniff');
        if (matchesEtag(request.headers['if-none-match'], etag)) return reply.code(304).send();
        const body = await open();
        const contentType = String(attachment.contentType);
        return reply
          .header('content-type', isTextType(contentType) ? `${contentType}; charset=utf-8` : contentType)
          .header('content-length', String(attachment.sizeBytes))
          .header('content-disposition', contentDisposition(String(attachment.fileName)))
          .send(body);
      },
    );
  };
}
