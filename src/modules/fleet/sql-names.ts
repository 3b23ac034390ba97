/**
 * Names and literals that go into DDL. Identifiers cannot be query parameters, so Havre generates
 * them itself from `[a-z0-9_]` only, and every identifier is checked against its pattern right
 * before it is interpolated. Passwords are quoted with the client's literal escaper.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';

export const DATABASE_NAME_PATTERN = /^t_[0-9a-f]{24}$/;
export const ROLE_NAME_PATTERN = /^r_[0-9a-f]{24}$/;
const SAFE_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

export interface TenantDatabaseNames {
  databaseName: string;
  roleName: string;
  password: string;
}

/** Opaque names (nothing about the customer) and a random 192-bit password (TEN-1). */
export function newTenantDatabaseNames(): TenantDatabaseNames {
  return {
    databaseName: `t_${randomBytes(12).toString('hex')}`,
    roleName: `r_${randomBytes(12).toString('hex')}`,
    password: randomBytes(24).toString('base64url'),
  };
}

/** Returns `name` for interpolation into SQL, or throws when it is not a safe identifier. */
export function ident(name: string, pattern: RegExp = SAFE_IDENTIFIER): string {
  if (!pattern.test(name) || !SAFE_IDENTIFIER.test(name)) throw new Error(`refusing unsafe SQL identifier ${JSON.stringify(name)}`);
  return name;
}

export const dbIdent = (name: string) => ident(name, DATABASE_NAME_PATTERN);
export const roleIdent = (name: string) => ident(name, ROLE_NAME_PATTERN);

/** A quoted SQL string literal, escaped by the connected client (standard_conforming_strings aware). */
export function literal(client: pg.ClientBase, value: string): string {
  return client.escapeLiteral(value);
}
