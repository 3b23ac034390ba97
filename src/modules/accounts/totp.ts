/**
 * TOTP (RFC 6238) second factor: 6 digits, 30-second steps, SHA-1 (what authenticator apps
 * support), one step of tolerance either side. The secret is kept sealed with the master key
 * (SEC-3), bound to the user id so it cannot be moved to another account.
 */
import { Secret, TOTP } from 'otpauth';

const ISSUER = 'Havre';
const PERIOD_MS = 30_000;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function totpSealContext(userId: string): string {
  return `totp:${userId}`;
}

export function otpauthUri(secretBase32: string, email: string): string {
  return new TOTP({ issuer: ISSUER, label: email, secret: Secret.fromBase32(secretBase32) }).toString();
}

/**
 * The time step of `code` if it is valid at `now` and newer than `lastCounter` (a code is
 * accepted once), else null.
 */
export function acceptTotp(secretBase32: string, code: string, now: Date, lastCounter: number | null): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const timestamp = now.getTime();
  const delta = TOTP.validate({ token: code, secret: Secret.fromBase32(secretBase32), timestamp, window: 1 });
  if (delta === null) return null;
  const counter = Math.floor(timestamp / PERIOD_MS) + delta;
  if (lastCounter !== null && counter <= lastCounter) return null;
  return counter;
}

/** The current code for a secret (tests and tooling). */
export function currentTotp(secretBase32: string, now: Date): string {
  return TOTP.generate({ secret: Secret.fromBase32(secretBase32), timestamp: now.getTime() });
}
