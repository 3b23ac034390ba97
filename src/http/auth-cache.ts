/**
 * The hot-path cache of authorization facts, so that a workspace request costs one query in the
 * tenant's database instead of three round trips (token → principal, tenant → database and
 * membership, then the query itself). bench/results/workspace-read.md has the figures.
 *
 * - `principals`: a session or API token (by its SHA-256) → the principal it resolves to.
 * - `tenantAccess`: (user, tenant) → the tenant's state and database and the user's role in it.
 *   Only successful lookups are cached: a stranger's request always reaches the database.
 *
 * Freshness: every change that affects them (revocations, sign-out, second factor passed,
 * profile changes, membership and role changes, tenant transitions) clears the whole cache of
 * this node in the repository method that makes it, so on this node it is exact. Another node (or
 * the CLI, another process) sees the change within `auth.cacheMs` (default 2 s); set it to 0 to
 * disable caching.
 */
import { createTtlCache, type TtlCache } from '../lib/ttl-cache.ts';
import type { Principal } from '../modules/accounts/authn.ts';

export interface TenantAccessFacts {
  tenant_id: string;
  customer_id: string;
  state: string;
  tenant_database_id: string | null;
  schema_version: number | null;
  role: 'owner' | 'administrator' | 'collaborator' | null;
}

export interface AuthCache {
  principals: TtlCache<Principal>;
  tenantAccess: TtlCache<TenantAccessFacts>;
  /** Something that authorization depends on changed on this node: forget everything. */
  forgetAll(): void;
}

export function createAuthCache(options: { ttlMs: number; maxEntries?: number; now?: () => number }): AuthCache {
  const maxEntries = options.maxEntries ?? 10_000;
  const principals = createTtlCache<Principal>({ ttlMs: options.ttlMs, maxEntries, now: options.now });
  const tenantAccess = createTtlCache<TenantAccessFacts>({ ttlMs: options.ttlMs, maxEntries, now: options.now });
  return {
    principals,
    tenantAccess,
    forgetAll() {
      principals.clear();
      tenantAccess.clear();
    },
  };
}

/** Wraps the named methods of `repo` so that each calls `changed()` once it has run (success or not). */
export function invalidating<R extends object>(repo: R, methods: readonly (keyof R)[], changed: () => void): R {
  const out = { ...repo };
  for (const name of methods) {
    const original = repo[name] as unknown as (...args: unknown[]) => Promise<unknown>;
    (out as Record<keyof R, unknown>)[name] = (...args: unknown[]) => Promise.resolve(original.apply(repo, args)).finally(changed);
  }
  return out;
}
