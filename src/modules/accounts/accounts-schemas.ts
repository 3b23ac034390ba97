/**
 * Request schemas of the accounts routes. Objects are strict: an unknown field is a 400, so a
 * client cannot smuggle `staffRole` or `emailVerified` into a sign-up or a profile update.
 */
import { z } from 'zod';
import { PASSWORD_MAX, PASSWORD_MIN } from './passwords.ts';

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });
// Codes ICU names that are not ISO 3166-1 countries (groupings, reserved, unknown).
const NOT_COUNTRIES = new Set(['EU', 'EZ', 'UN', 'QO', 'UK', 'ZZ', 'XA', 'XB']);

/** ISO 3166-1 alpha-2, upper case. */
export const countryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code in upper case, e.g. "FR"')
  .refine((c) => !NOT_COUNTRIES.has(c) && regionNames.of(c) !== c, 'not an ISO 3166-1 country code');

export const email = z.email().max(320);
export const password = z.string().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX);
export const personName = z.string().trim().min(1).max(200);
export const phone = z.string().trim().regex(/^\+?[0-9 ().-]{3,40}$/, 'digits, spaces, + ( ) . - only');
export const postalAddress = z.string().trim().min(1).max(500);
export const locale = z.enum(['fr', 'en']);
export const memberRole = z.enum(['owner', 'administrator', 'collaborator']);
export const staffRole = z.enum(['admin', 'support', 'billing']);
export const totpCode = z.string().regex(/^\d{6}$/, 'six digits');
export const oneTimeTokenValue = z.string().min(10).max(200);
export const uuid = z.uuid();

export const signUpBody = z.strictObject({
  name: personName,
  company: z.string().trim().min(1).max(200),
  email,
  password,
  phone: phone.optional(),
  postalAddress: postalAddress.optional(),
  country: countryCode.optional(),
  locale: locale.optional(),
});

export const tokenBody = z.strictObject({ token: oneTimeTokenValue });
export const signInBody = z.strictObject({ email: z.string().max(320), password: z.string().max(PASSWORD_MAX), code: totpCode.optional() });
export const codeBody = z.strictObject({ code: totpCode });
export const apiTokenBody = z.strictObject({ name: z.string().trim().min(1).max(100), expiresInDays: z.number().int().min(1).max(3650).optional() });
export const resetRequestBody = z.strictObject({ email: z.string().max(320) });
export const resetCompleteBody = z.strictObject({ token: oneTimeTokenValue, password });
export const profileBody = z.strictObject({ name: personName.optional(), phone: phone.nullable().optional(), locale: locale.optional() });
export const passwordChangeBody = z.strictObject({ currentPassword: z.string().max(PASSWORD_MAX), newPassword: password });

export const customerPatchBody = z.strictObject({
  name: z.string().trim().min(1).max(200).optional(),
  postalAddress: postalAddress.nullable().optional(),
  country: countryCode.nullable().optional(),
  contactUserId: uuid.optional(),
  dataProtectionContact: z.strictObject({ name: personName, email }).nullable().optional(),
});
export const roleBody = z.strictObject({ role: memberRole });
export const invitationBody = z.strictObject({ email, role: memberRole });
export const acceptInvitationBody = z.strictObject({ token: oneTimeTokenValue, name: personName.optional(), password: password.optional(), locale: locale.optional() });
export const staffBody = z.strictObject({ email, name: personName, role: staffRole });

export const customerParams = z.strictObject({ id: uuid });
export const memberParams = z.strictObject({ id: uuid, userId: uuid });
export const invitationParams = z.strictObject({ id: uuid, invitationId: uuid });
export const idParams = z.strictObject({ id: uuid });

/** The preferred of fr/en in an Accept-Language header (ACC-6); English by default. */
export function localeFromHeader(header: string | undefined): 'fr' | 'en' {
  for (const part of (header ?? '').split(',')) {
    const tag = part.trim().slice(0, 2).toLowerCase();
    if (tag === 'fr' || tag === 'en') return tag;
  }
  return 'en';
}
