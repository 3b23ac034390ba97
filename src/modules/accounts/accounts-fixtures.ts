/**
 * Test helpers for anything that needs signed-up members (used by tests of this and other
 * modules; not loaded by the application).
 */
import { randomBytes } from 'node:crypto';
import type { HttpClient, TestContext } from '../../../test/context.ts';
import { currentTotp } from './totp.ts';

export const TEST_PASSWORD = 'correct horse battery staple';

export function uniqueEmail(label = 'user'): string {
  return `${label}-${randomBytes(4).toString('hex')}@example.test`;
}

/**
 * The token in the newest mail of `template` sent to `to` (from the outbox). Waits a little for it:
 * some mails (password reset) are queued after the request is answered.
 */
export async function mailedToken(ctx: TestContext, to: string, template: string): Promise<string> {
  for (let waited = 0; ; waited += 20) {
    const entry = (await ctx.core.mailer.list({ to })).find((m) => m.template === template);
    if (entry) {
      const mail = await ctx.core.mailer.show(entry.id);
      const match = /token=([A-Za-z0-9_%-]+)/.exec(mail!.text);
      if (!match) throw new Error(`no token in ${template} mail`);
      return decodeURIComponent(match[1]!);
    }
    if (waited >= 3000) throw new Error(`no ${template} mail to ${to}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface SignedUp {
  http: HttpClient;
  email: string;
  password: string;
  userId: string;
  customerId: string;
}

/** Signs up a new company and its owner; `verify` also confirms the e-mail with the mailed token. */
export async function signUp(ctx: TestContext, options: { verify?: boolean; body?: Record<string, unknown> } = {}): Promise<SignedUp> {
  const http = ctx.client();
  const email = uniqueEmail('owner');
  const res = await http.post('/api/v1/signup', { name: 'Ada Owner', company: 'Acme SAS', email, password: TEST_PASSWORD, ...options.body });
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  if (options.verify ?? true) {
    const token = await mailedToken(ctx, email, 'accounts.verify_email');
    const v = await http.post('/api/v1/email-verifications', { token });
    if (v.status !== 200) throw new Error(`verification failed: ${v.status}`);
  }
  return { http, email, password: TEST_PASSWORD, userId: res.body.user.id, customerId: res.body.customer.id };
}

/** A fresh client signed in as `email`. */
export async function signIn(ctx: TestContext, email: string, password = TEST_PASSWORD, code?: string): Promise<HttpClient> {
  const http = ctx.client();
  const res = await http.post('/api/v1/sessions', { email, password, ...(code && { code }) });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${JSON.stringify(res.body)}`);
  return http;
}

/** The TOTP code for `secret` at the test clock's time. */
export function totpCode(ctx: TestContext, secret: string): string {
  return currentTotp(secret, ctx.clock.now());
}

export interface AddedMember {
  http: HttpClient;
  userId: string;
  email: string;
}

/** Invites `email` into the owner's customer with `role` and accepts as a new account (signed in). */
export async function addMember(ctx: TestContext, owner: SignedUp, role: 'owner' | 'administrator' | 'collaborator', email = uniqueEmail(role)): Promise<AddedMember> {
  const inv = await owner.http.post(`/api/v1/customers/${owner.customerId}/invitations`, { email, role });
  if (inv.status !== 201) throw new Error(`invitation failed: ${inv.status} ${JSON.stringify(inv.body)}`);
  const token = await mailedToken(ctx, email, 'accounts.invitation');
  const http = ctx.client();
  const res = await http.post('/api/v1/invitations/accept', { token, name: `New ${role}`, password: TEST_PASSWORD });
  if (res.status !== 200) throw new Error(`acceptance failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { http, userId: res.body.user.id, email };
}
