/**
 * HTTP routes of one's own account: sign-up, e-mail verification, sessions and second factor,
 * profile, password, API tokens. Thin: validate (zod), authenticate, call a service, present.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { clearSessionCookie, requireUser, setSessionCookie } from '../../http/auth.ts';
import { unauthorized } from '../../lib/errors.ts';
import { SESSION_COOKIE, csrfTokenFor, type NewSession } from './authn.ts';
import type { Actor, RequestMeta } from './accounts-deps.ts';
import type { AccountsServices } from './index.ts';
import * as s from './accounts-schemas.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';

export interface RouteSettings {
  /** Secure cookies even when the request looks like plain HTTP (production behind a proxy). */
  secureCookies: boolean;
}

export const SIGNED_IN: Record<string, string[]>[] = [{ session: [] }, { bearer: [] }];

export function requestMeta(request: FastifyRequest): RequestMeta {
  const ua = request.headers['user-agent'];
  return { ip: request.ip, userAgent: typeof ua === 'string' ? ua : null };
}

/** The fully signed-in caller (second factor passed) and their IP, for services and the audit log. */
export function actorOf(request: FastifyRequest): Actor {
  return { principal: requireUser(request), ip: request.ip };
}

/** The CSRF token of the caller's cookie session (null for API tokens). */
function currentCsrf(request: FastifyRequest): string | null {
  const cookie = request.cookies[SESSION_COOKIE];
  return request.principal?.via === 'session' && cookie ? csrfTokenFor(cookie) : null;
}

export function openSession(reply: FastifyReply, request: FastifyRequest, session: NewSession, settings: RouteSettings): void {
  setSessionCookie(reply, request, session.token, session.expiresAt, settings.secureCookies);
}

export function accountsRoutes(services: AccountsServices, settings: RouteSettings): RoutePlugin {
  const { identity, signIn, passwordResets } = services;
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const tags = ['accounts'];

    r.post('/api/v1/signup', { schema: { tags, summary: 'Sign up: creates the company, its owner and a session (ACC-1)', body: s.signUpBody } }, async (request, reply) => {
      const body = request.body;
      const result = await identity.signUp({ ...body, locale: body.locale ?? localeFromAcceptLanguage(request.headers['accept-language']) }, requestMeta(request));
      openSession(reply, request, result.session, settings);
      return reply.status(201).send({ user: result.user, customer: result.customer, csrfToken: result.session.csrfToken });
    });

    r.post('/api/v1/email-verifications', { schema: { tags, summary: 'Verify the e-mail address with the mailed token', body: s.tokenBody } }, async (request) => ({
      user: await identity.verifyEmail(request.body.token, request.ip),
    }));

    r.post('/api/v1/email-verifications/resend', { schema: { tags, summary: 'Send the verification e-mail again', security: SIGNED_IN } }, async (request, reply) => {
      await identity.resendVerification(actorOf(request));
      return reply.status(202).send({ sent: true });
    });

    r.post('/api/v1/sessions', { schema: { tags, summary: 'Sign in (rate-limited; TOTP when enabled)', body: s.signInBody } }, async (request, reply) => {
      const result = await signIn.signIn(request.body, requestMeta(request));
      openSession(reply, request, result.session, settings);
      return { user: result.user, csrfToken: result.session.csrfToken, secondFactor: result.secondFactor };
    });

    r.get('/api/v1/sessions/current', { schema: { tags, summary: 'The current session (also while the second factor is pending)', security: SIGNED_IN } }, async (request) => {
      const current = await signIn.currentSession(request.principal);
      return { user: current.user, csrfToken: currentCsrf(request), secondFactor: current.secondFactor };
    });

    r.delete('/api/v1/sessions/current', { schema: { tags, summary: 'Sign out' } }, async (request, reply) => {
      await signIn.signOut(request.principal);
      clearSessionCookie(reply);
      return reply.status(204).send();
    });

    r.post('/api/v1/sessions/current/second-factor', { schema: { tags, summary: 'Complete a pending sign-in with a TOTP code', body: s.codeBody } }, async (request) => {
      const user = await signIn.completeSecondFactor(request.principal, request.body.code, request.ip);
      return { user, csrfToken: currentCsrf(request), secondFactor: 'none' };
    });

    r.post('/api/v1/me/totp', { schema: { tags, summary: 'Start TOTP enrolment: returns the secret and otpauth URI once' } }, async (request, reply) => {
      return reply.status(201).send(await signIn.startTotpEnrollment(request.principal));
    });

    r.post('/api/v1/me/totp/confirm', { schema: { tags, summary: 'Confirm TOTP enrolment with a first code', body: s.codeBody } }, async (request) => {
      if (!request.principal) throw unauthorized();
      const user = await signIn.confirmTotp(request.principal, request.body.code, request.ip);
      return { user, csrfToken: currentCsrf(request), secondFactor: 'none' };
    });

    r.delete('/api/v1/me/totp', { schema: { tags, summary: 'Turn TOTP off (members only) with a current code', body: s.codeBody, security: SIGNED_IN } }, async (request) => ({
      user: await signIn.disableTotp(actorOf(request), request.body.code),
    }));

    r.get('/api/v1/me', { schema: { tags, summary: 'My account and my customers (ACC-3)', security: SIGNED_IN } }, async (request) => identity.me(requireUser(request).userId));

    r.patch('/api/v1/me', { schema: { tags, summary: 'Update my name, phone, language (ACC-3)', body: s.profileBody, security: SIGNED_IN } }, async (request) => ({
      user: await identity.updateMe(actorOf(request), request.body),
    }));

    r.post('/api/v1/me/password', { schema: { tags, summary: 'Change my password (closes my other sessions)', body: s.passwordChangeBody, security: SIGNED_IN } }, async (request, reply) => {
      await identity.changePassword(actorOf(request), request.body.currentPassword, request.body.newPassword);
      return reply.status(204).send();
    });

    r.post('/api/v1/tokens', { schema: { tags, summary: 'Create an API token (shown once)', body: s.apiTokenBody, security: SIGNED_IN } }, async (request, reply) => {
      return reply.status(201).send(await identity.createApiToken(actorOf(request), request.body));
    });

    r.get('/api/v1/tokens', { schema: { tags, summary: 'My live API tokens', security: SIGNED_IN } }, async (request) => ({
      tokens: await identity.listApiTokens(requireUser(request).userId),
    }));

    r.delete('/api/v1/tokens/:id', { schema: { tags, summary: 'Revoke an API token', params: s.idParams, security: SIGNED_IN } }, async (request, reply) => {
      await identity.revokeApiToken(actorOf(request), request.params.id);
      return reply.status(204).send();
    });

    r.post('/api/v1/password-resets', { schema: { tags, summary: 'Ask for a password reset e-mail (always 202)', body: s.resetRequestBody } }, async (request, reply) => {
      // Answered before the address is even looked up: nothing to learn from the timing.
      passwordResets.requestPasswordReset(request.body.email, request.ip);
      return reply.status(202).send({ accepted: true });
    });

    r.post('/api/v1/password-resets/complete', { schema: { tags, summary: 'Set a new password with the mailed token; closes every session', body: s.resetCompleteBody } }, async (request, reply) => {
      await passwordResets.completePasswordReset(request.body.token, request.body.password, request.ip);
      return reply.status(204).send();
    });
  };
}
