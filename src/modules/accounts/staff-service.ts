/**
 * Operator staff (admin, support, billing). Staff accounts are created by an admin or the CLI with
 * a random password shown once; their sign-in always needs TOTP (SEC-2), enrolled at first sign-in.
 */
import { sql } from 'kysely';
import { conflict } from '../../lib/errors.ts';
import type { Executor } from '../../db/db.ts';
import type { AuditEntryInput } from '../audit/audit-service.ts';
import { auditActor, isUniqueViolation, type AccountsDeps, type Actor } from './accounts-deps.ts';
import { presentUser, type UserView } from './accounts-presenters.ts';
import type { StaffRole } from './accounts-tables.ts';
import { hashPassword, randomPassword } from './passwords.ts';

export const FIRST_OPERATOR_EMAIL = 'admin@havre.localhost';
/** Arbitrary constant: the advisory lock that makes `ensureFirstOperator` safe on many nodes. */
const FIRST_OPERATOR_LOCK = 7_311_004_301;

export interface OperatorInput {
  email: string;
  name: string;
  role: StaffRole;
}

export function createStaffService(deps: AccountsDeps) {
  const { db, clock, users, audit } = deps;

  const insertOperator = async (input: OperatorInput, passwordHash: string, by: Pick<AuditEntryInput, 'actorType' | 'actorId' | 'ip'>, trx: Executor) => {
    const now = clock.now();
    const email = input.email.toLowerCase();
    if (await users.findUserByEmail(email, trx)) throw conflict('email_taken', 'An account with this e-mail already exists.');
    // Staff e-mails are given by the operator, not typed by a stranger: they count as verified.
    const user = await users.insertUser(
      { email, name: input.name, phone: null, locale: 'en', password_hash: passwordHash, email_verified_at: now, staff_role: input.role, totp_secret_sealed: null, totp_enabled_at: null, created_at: now, updated_at: now },
      trx,
    );
    await audit.record({ ...by, action: 'staff.created', subjectType: 'user', subjectId: user.id, data: { email, role: input.role } }, trx);
    return user;
  };

  return {
    /** Creates a staff account with a random password, returned once. `actor` absent: the CLI. */
    async createOperator(input: OperatorInput, actor?: Actor): Promise<{ user: UserView; password: string }> {
      const password = randomPassword();
      const passwordHash = await hashPassword(password);
      const by = actor ? auditActor(actor) : { actorType: 'cli' as const, actorId: null, ip: null };
      try {
        const user = await db.transaction().execute((trx) => insertOperator(input, passwordHash, by, trx));
        return { user: presentUser(user), password };
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('email_taken', 'An account with this e-mail already exists.');
        throw err;
      }
    },

    /**
     * On first start: creates an admin with a random password when no staff account exists, and
     * returns its credentials (to print once); null otherwise. An advisory lock makes it safe when
     * several nodes start at once.
     */
    async ensureFirstOperator(): Promise<{ email: string; password: string } | null> {
      if (await users.anyStaff()) return null;
      const password = randomPassword();
      const passwordHash = await hashPassword(password);
      return db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(${FIRST_OPERATOR_LOCK})`.execute(trx);
        if (await users.anyStaff(trx)) return null;
        await insertOperator({ email: FIRST_OPERATOR_EMAIL, name: 'Administrator', role: 'admin' }, passwordHash, { actorType: 'system', actorId: null, ip: null }, trx);
        return { email: FIRST_OPERATOR_EMAIL, password };
      });
    },

    async listStaff(): Promise<UserView[]> {
      return (await users.listStaff()).map(presentUser);
    },
  };
}

export type StaffService = ReturnType<typeof createStaffService>;
