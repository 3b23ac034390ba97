/**
 * Request schemas of the accounts routes (and of the pages behind e-mailed links). Objects are
 * strict: an unknown field is a 400, so a client cannot smuggle `staffRole` or `emailVerified`
 * into a sign-up or a profile update.
 *
 * Every string goes through `line` or `text`: control characters are refused with a 400. NUL
 * cannot even be stored (PostgreSQL text refuses it, which would be a 500), and the others (escape
 * sequences, bells, line breaks in a name) only ever come from attacks or broken clients and end
 * up in e-mails, logs and the back office.
 */
import { z } from 'zod';
import { PASSWORD_MAX, PASSWORD_MIN } from './passwords.ts';

const regionNames = new Intl.DisplayNames(['en'], { type: 'region' });
// Codes ICU names that are not ISO 3166-1 countries (groupings, reserved, unknown).
const NOT_COUNTRIES = new Set(['EU', 'EZ', 'UN', 'QO', 'UK', 'ZZ', 'XA', 'XB']);

// Control characters are exactly what these two patterns look for.
// eslint-disable-next-line no-control-regex
const NO_CONTROL = /^[^\u0000-\u001F\u007F]*$/;
// eslint-disable-next-line no-control-regex
const NO_CONTROL_BUT_LINES = /^[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]*$/;

/** A single-line string: no control character at all (no NUL, no tab, no line break). */
export const line = () => z.string().regex(NO_CONTROL, 'control characters and line breaks are not allowed');
/** Free text: tabs and line breaks allowed, any other control character refused. */
export const text = () => z.string().regex(NO_CONTROL_BUT_LINES, 'control characters are not allowed');

/** ISO 3166-1 alpha-2, upper case. */
export const countryCode = z
  .string()
  .regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code in upper case, e.g. "FR"')
  .refine((c) => !NOT_COUNTRIES.has(c) && regionNames.of(c) !== c, 'not an ISO 3166-1 country code');

// z.email() already refuses every control character (and an extra pattern would hide `format: email` from OpenAPI).
export const email = z.email().max(320);
/** An e-mail as typed at sign-in or reset: not checked for format (unknown is unknown), only for control characters. */
export const freeEmail = line().max(320);
export const password = text().min(PASSWORD_MIN, `at least ${PASSWORD_MIN} characters`).max(PASSWORD_MAX);
export const personName = line().trim().min(1).max(200);
export const phone = line().trim().regex(/^\+?[0-9 ().-]{3,40}$/, 'digits, spaces, + ( ) . - only');
export const postalAddress = text().trim().min(1).max(500);
export const companyName = line().trim().min(1).max(200);
/** A password being checked (sign-in, current password): any length, so old passwords still work. */
export const givenPassword = text().max(PASSWORD_MAX);
export const locale = z.enum(['fr', 'en']);
export const memberRole = z.enum(['owner', 'administrator', 'collaborator']);
export const staffRole = z.enum(['admin', 'support', 'billing']);
export const totpCode = line().regex(/^\d{6}$/, 'six digits');
export const oneTimeTokenValue = line().min(10).max(200);
export const uuid = z.uuid();

export const signUpBody = z.strictObject({
  name: personName,
  company: companyName,
  email,
  password,
  phone: phone.optional(),
  postalAddress: postalAddress.optional(),
  country: countryCode.optional(),
  locale: locale.optional(),
});

export const tokenBody = z.strictObject({ token: oneTimeTokenValue });
export const signInBody = z.strictObject({ email: freeEmail, password: givenPassword, code: totpCode.optional() });
export const codeBody = z.strictObject({ code: totpCode });
export const apiTokenBody = z.strictObject({ name: line().trim().min(1).max(100), expiresInDays: z.number().int().min(1).max(3650).optional() });
export const resetRequestBody = z.strictObject({ email: freeEmail });
export const resetCompleteBody = z.strictObject({ token: oneTimeTokenValue, password });
export const profileBody = z.strictObject({ name: personName.optional(), phone: phone.nullable().optional(), locale: locale.optional() });
export const passwordChangeBody = z.strictObject({ currentPassword: givenPassword, newPassword: password });

export const customerPatchBody = z.strictObject({
  name: companyName.optional(),
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

