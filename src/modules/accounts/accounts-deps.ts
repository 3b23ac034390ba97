/**
 * What the accounts services depend on (narrowed from the core), and small helpers they share.
 */
import type { Config } from '../../config/config.ts';
import type { Db } from '../../db/db.ts';
import type { Clock } from '../../lib/clock.ts';
import { randomToken, sha256Hex, type SecretBox } from '../../lib/crypto.ts';
import { forbidden } from '../../lib/errors.ts';
import type { AuditEntryInput, AuditService } from '../audit/audit-service.ts';
import type { Mailer } from '../mail/mail-service.ts';
import type { AccountsRepo } from './accounts-repo.ts';
import type { Principal } from './authn.ts';
import type { CustomersRepo } from './customers-repo.ts';

export interface AccountsDeps {
  db: Db;
  clock: Clock;
  secrets: SecretBox;
  audit: AuditService;
  mailer: Mailer;
  users: AccountsRepo;
  customers: CustomersRepo;
  auth: Config['auth'];
  /** Public base URL for links in e-mails. */
  baseUrl: string;
}

/** Who acts, and from where: every audited action carries both. */
export interface Actor {
  principal: Principal;
  ip: string | null;
}

/** Where a request comes from, for new sessions and sign-in throttling. */
export interface RequestMeta {
  ip: string;
  userAgent: string | null;
}

/**
 * 403 `session_required` unless the principal signed in with a session (password, and second
 * factor where on). For what an API token must never do: manage the second factor, change the
 * password, mint more tokens. A leaked token must not be a way to take over the account.
 */
export function requireSession(principal: Principal): void {
  if (principal.via !== 'session') throw forbidden('session_required', 'Sign in with your password to do this; API tokens cannot.');
}

/** The actor fields of an audit entry. */
export function auditActor(actor: Actor): Pick<AuditEntryInput, 'actorType' | 'actorId' | 'ip'> {
  return { actorType: actor.principal.staffRole ? 'staff' : 'user', actorId: actor.principal.userId, ip: actor.ip };
}

/** A one-time token (sent to the user) and its hash (stored). */
export function oneTimeToken(): { token: string; hash: string } {
  const token = randomToken();
  return { token, hash: sha256Hex(token) };
}

/** PostgreSQL unique_violation: a concurrent request created the same e-mail, invitation… */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505';
}

export function addHours(d: Date, hours: number): Date {
  return new Date(d.getTime() + hours * 3_600_000);
}
