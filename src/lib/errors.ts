/**
 * Typed domain errors. Each carries a stable `code` that clients can rely on, and the HTTP status
 * it maps to. One Fastify handler (src/http/error-handler.ts) turns them into problem+json; any
 * other error becomes a 500 with the request id and no internals.
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: string;
  readonly status: number;
  /** Extra, non-secret fields shown to the client (e.g. which fields are invalid). */
  readonly details: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, details?: Record<string, unknown>) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const badRequest = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(400, code, message, details);
export const unauthorized = (code = 'unauthenticated', message = 'Sign in first.') => new AppError(401, code, message);
export const forbidden = (code = 'forbidden', message = 'You are not allowed to do this.') => new AppError(403, code, message);
/** Also used for resources of another customer: we never confirm they exist. */
export const notFound = (code: string, message = 'Not found.') => new AppError(404, code, message);
export const conflict = (code: string, message: string, details?: Record<string, unknown>) =>
  new AppError(409, code, message, details);
export const tooManyRequests = (code: string, message: string, retryAfterSeconds: number) =>
  new AppError(429, code, message, { retryAfterSeconds });
export const unavailable = (code: string, message: string) => new AppError(503, code, message);
