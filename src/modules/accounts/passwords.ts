/**
 * SEC-1: passwords are hashed with Argon2id (memory-hard) and never stored, logged or returned.
 * Parameters follow the OWASP baseline (19 MiB, 2 passes, 1 lane).
 */
import { hash, verify, type Algorithm } from '@node-rs/argon2';
import { randomToken } from '../../lib/crypto.ts';

// `Algorithm` is a const enum in the package's typings and is not emitted at runtime, so the
// value is written out: 2 = Argon2id.
const ARGON2ID = 2 as Algorithm;
const OPTIONS = { algorithm: ARGON2ID, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 200;

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

/** False (never a throw) for a wrong password or a malformed stored hash. */
export async function verifyPassword(storedHash: string, password: string): Promise<boolean> {
  try {
    return await verify(storedHash, password);
  } catch {
    return false;
  }
}

let dummyHash: Promise<string> | null = null;

/**
 * Spends the time of a real verification against a hash no password matches: used for unknown
 * e-mails so that the answer time does not reveal whether an account exists.
 */
export async function verifyDummy(password: string): Promise<void> {
  dummyHash ??= hashPassword(randomToken());
  await verifyPassword(await dummyHash, password);
}

/** A random password for accounts created by an operator (shown once): 24 URL-safe characters. */
export function randomPassword(): string {
  return randomToken(18);
}
