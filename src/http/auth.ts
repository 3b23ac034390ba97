/**
 * Resolves who is calling on every request (session cookie or `Authorization: Bearer` token),
 * enforces CSRF on cookie-authenticated writes, and offers the guards routes call.
 * Authorization rules about customers and tenants live in the services; these guards only answer
 * "is someone signed in" and "is this staff with the right role".
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../db/db.ts';
import { sha256Hex } from '../lib/crypto.ts';
import type { TtlCache } from '../lib/ttl-cache.ts';
import type { Clock } from '../lib/clock.ts';
import { forbidden, unauthorized } from '../lib/errors.ts';
import type { StaffRole } from '../modules/accounts/accounts-tables.ts';
import { SESSION_COOKIE, checkCsrf, resolveApiToken, resolveSession, type Principal } from '../modules/accounts/authn.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** A form acting on a one-time token alone: cookies are ignored, so there is nothing to forge. */
    publicForm?: boolean;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `cache`: principals by token hash (see auth-cache.ts); the CSRF check still runs on every
 * cookie-authenticated write.
 */
export function installAuth(app: FastifyInstance, deps: { db: Db; clock: Clock; cache: TtlCache<Principal> }): void {
  const cached = async (kind: 't' | 's', token: string, resolve: () => Promise<Principal | null>): Promise<Principal | null> => {
    const key = `${kind}:${sha256Hex(token)}`;
    const hit = deps.cache.get(key);
    if (hit && (!hit.expiresAt || hit.expiresAt > deps.clock.now())) return hit;
    const principal = await resolve();
    if (principal) deps.cache.set(key, principal);
    return principal;
  };
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.publicForm) return;
    const header = request.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      const principal = match ? await cached('t', match[1]!, () => resolveApiToken(deps.db, deps.clock, match[1]!)) : null;
      if (!principal) throw unauthorized('invalid_token', 'The API token is invalid, expired or revoked.');
      request.principal = principal;
      return;
    }
    const cookie = request.cookies[SESSION_COOKIE];
    if (!cookie) return;
    const principal = await cached('s', cookie, () => resolveSession(deps.db, deps.clock, cookie));
    if (!principal) return; // expired session: treated as signed out
    if (!SAFE_METHODS.has(request.method) && !checkCsrf(cookie, headerValue(request, 'x-csrf-token'))) {
      throw forbidden('csrf_failed', 'Missing or wrong X-CSRF-Token header for a cookie-authenticated request.');
    }
    request.principal = principal;
  });
}

function headerValue(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The signed-in principal, fully authenticated (second factor passed where required). */
export function requireUser(request: FastifyRequest): Principal {
  const p = request.principal;
  if (!p) throw unauthorized();
  if (p.secondFactorPending) throw unauthorized('second_factor_required', 'Enter your two-factor code first.');
  return p;
}

/** Staff only, with one of `roles` (admin may do everything). */
export function requireStaff(request: FastifyRequest, roles: StaffRole[] = ['admin', 'support', 'billing']): Principal {
  const p = requireUser(request);
  if (!p.staffRole) throw forbidden('staff_only', 'This route is for operator staff.');
  if (p.staffRole !== 'admin' && !roles.includes(p.staffRole)) throw forbidden('staff_role_required', `This needs one of the staff roles: ${roles.join(', ')}.`);
  return p;
}

/** Sets the session cookie: HttpOnly, SameSite=Lax, Secure whenever the request came over HTTPS. */
export function setSessionCookie(reply: FastifyReply, request: FastifyRequest, token: string, expiresAt: Date, forceSecure: boolean): void {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'lax',
    secure: forceSecure || request.protocol === 'https',
    path: '/',
    expires: expiresAt,
  });
}

export function clearSessionCookie(reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/' });
}
