/**
 * The one place where errors become HTTP answers, as `application/problem+json` (RFC 9457) with a
 * stable `code`. Domain errors (AppError) keep their status and message; validation errors list
 * the offending fields; anything unexpected is a 500 that shows only the request id, never
 * internals (the log has the details).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError } from '../lib/errors.ts';

export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  requestId: string;
  [extra: string]: unknown;
}

function send(reply: FastifyReply, request: FastifyRequest, status: number, code: string, detail: string, extra: Record<string, unknown> = {}) {
  const problem: Problem = {
    type: `about:blank#${code}`,
    title: code.replace(/_/g, ' '),
    status,
    code,
    detail,
    requestId: String(request.id),
    ...extra,
  };
  if (status === 429 && typeof extra.retryAfterSeconds === 'number') reply.header('retry-after', String(extra.retryAfterSeconds));
  return reply.status(status).type('application/problem+json').send(problem);
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setNotFoundHandler((request, reply) => send(reply, request, 404, 'route_not_found', `No route ${request.method} ${request.url.split('?')[0]}.`));

  app.setErrorHandler((error: FastifyError | AppError | Error, request, reply) => {
    if (error instanceof AppError) return send(reply, request, error.status, error.code, error.message, error.details);

    if (hasZodFastifySchemaValidationErrors(error)) {
      const issues = error.validation.map((v) => ({
        where: error.validationContext ?? 'body',
        path: v.instancePath || '/',
        message: v.message ?? 'invalid',
      }));
      return send(reply, request, 400, 'invalid_request', 'The request does not match the expected format.', { issues });
    }
    const fe = error as FastifyError;
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, request, 413, 'payload_too_large', 'The request body is too large.');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, request, 415, 'unsupported_media_type', 'Send JSON (content-type: application/json).');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return send(reply, request, 400, 'invalid_json', 'The request body is not valid JSON.');
      case 'FST_ERR_VALIDATION':
        return send(reply, request, 400, 'invalid_request', fe.message);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return send(reply, request, fe.statusCode, 'bad_request', fe.message);
    }
    request.log.error({ err: error }, 'unhandled error');
    return send(reply, request, 500, 'internal_error', 'Something went wrong on our side. Quote the request id if you contact support.');
  });
}
