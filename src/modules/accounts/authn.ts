/**
 * Authentication primitives: server-side sessions (cookie) and API tokens (Bearer).
 *
 * Tokens are random 32-byte values shown to the client once; the database keeps only their
 * SHA-256, so a copy of the database does not let anyone sign in. The CSRF token of a session is
 * derived from the session token (HMAC-free: a hash with a domain prefix), so it needs no storage,
 * and a page can only learn it from an authenticated response — a cross-site form cannot.
 */
import type { Clock } from '../../lib/clock.ts';
import { randomToken, safeEqual, sha256Hex } from '../../lib/crypto.ts';
import type { Executor } from '../../db/db.ts';
import type { Locale, StaffRole } from './accounts-tables.ts';

export const SESSION_COOKIE = 'havre_session';
export const API_TOKEN_PREFIX = 'hvr_';

/** Who is calling. Routes receive this, never a raw database row. */
export interface Principal {
  userId: string;
  email: string;
  name: string;
  locale: Locale;
  staffRole: StaffRole | null;
  emailVerified: boolean;
  via: 'session' | 'token';
  /** Hash id of the session (sessions only). */
  sessionId: string | null;
  /** Staff who still have to pass (or enrol) TOTP: only the second-factor routes accept them. */
  secondFactorPending: boolean;
  /** When the session or token stops being valid (null: a token without expiry). A cached principal is never used past it. */
  expiresAt?: Date | null;
}

export function csrfTokenFor(sessionToken: string): string {
  return sha256Hex(`csrf:${sessionToken}`);
}

export function checkCsrf(sessionToken: string, header: string | undefined): boolean {
  return typeof header === 'string' && safeEqual(header, csrfTokenFor(sessionToken));
}

export interface NewSession {
  token: string;
  csrfToken: string;
  sessionId: string;
  expiresAt: Date;
}

/** Opens a session for `userId`. The caller sets the cookie from `token`. */
export async function createSession(
  db: Executor,
  clock: Clock,
  input: { userId: string; ttlHours: number; secondFactorPending: boolean; ip: string | null; userAgent: string | null },
): Promise<NewSession> {
  const token = randomToken();
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + input.ttlHours * 3_600_000);
  const sessionId = sha256Hex(token);
  await db
    .insertInto('sessions')
    .values({
      id: sessionId,
      user_id: input.userId,
      second_factor_pending: input.secondFactorPending,
      ip: input.ip,
      user_agent: input.userAgent?.slice(0, 300) ?? null,
      created_at: now,
      last_seen_at: now,
      expires_at: expiresAt,
      revoked_at: null,
    })
    .execute();
  return { token, csrfToken: csrfTokenFor(token), sessionId, expiresAt };
}

const principalColumns = ['users.id as userId', 'users.email', 'users.name', 'users.locale', 'users.staff_role', 'users.email_verified_at'] as const;

/** The principal of a live (unexpired, unrevoked) session, or null. */
export async function resolveSession(db: Executor, clock: Clock, token: string): Promise<Principal | null> {
  const now = clock.now();
  const row = await db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .select([...principalColumns, 'sessions.id as sessionId', 'sessions.second_factor_pending', 'sessions.last_seen_at', 'sessions.expires_at'])
    .where('sessions.id', '=', sha256Hex(token))
    .where('sessions.revoked_at', 'is', null)
    .where('sessions.expires_at', '>', now)
    .executeTakeFirst();
  if (!row) return null;
  // Touch at most once a minute: no write per request.
  if (now.getTime() - row.last_seen_at.getTime() > 60_000) {
    await db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', row.sessionId).execute();
  }
  return {
    userId: row.userId,
    email: row.email,
    name: row.name,
    locale: row.locale,
    staffRole: row.staff_role,
    emailVerified: row.email_verified_at !== null,
    via: 'session',
    sessionId: row.sessionId,
    secondFactorPending: row.second_factor_pending,
    expiresAt: row.expires_at,
  };
}

/** The principal of a live API token, or null. Staff cannot use API tokens: their sign-in needs TOTP. */
export async function resolveApiToken(db: Executor, clock: Clock, token: string): Promise<Principal | null> {
  if (!token.startsWith(API_TOKEN_PREFIX)) return null;
  const now = clock.now();
  const row = await db
    .selectFrom('api_tokens')
    .innerJoin('users', 'users.id', 'api_tokens.user_id')
    .select([...principalColumns, 'api_tokens.id as tokenId', 'api_tokens.last_used_at', 'api_tokens.expires_at'])
    .where('api_tokens.token_hash', '=', sha256Hex(token))
    .where('api_tokens.revoked_at', 'is', null)
    .where((eb) => eb.or([eb('api_tokens.expires_at', 'is', null), eb('api_tokens.expires_at', '>', now)]))
    .executeTakeFirst();
  if (!row || row.staff_role !== null) return null;
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > 60_000) {
    await db.updateTable('api_tokens').set({ last_used_at: now }).where('id', '=', row.tokenId).execute();
  }
  return {
    userId: row.userId,
    email: row.email,
    name: row.name,
    locale: row.locale,
    staffRole: null,
    emailVerified: row.email_verified_at !== null,
    via: 'token',
    sessionId: null,
    secondFactorPending: false,
    expiresAt: row.expires_at,
  };
}

/** A new API token value (shown once) and what is stored about it. */
export function newApiTokenValue(): { token: string; hash: string; prefix: string } {
  const token = API_TOKEN_PREFIX + randomToken();
  return { token, hash: sha256Hex(token), prefix: token.slice(0, 12) };
}
