/**
 * The pages behind e-mailed links — verify an e-mail address, reset a password, accept an
 * invitation — in French or English, until the web app exists.
 *
 * A GET never changes anything (mail scanners prefetch links): it shows a form, and the POST does
 * the work. These POSTs act on the one-time token in the form alone, never on a session, so they
 * are marked `publicForm` (the auth hook ignores cookies for them: no CSRF surface).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { RoutePlugin, ZodTypeProvider } from '../../http/server.ts';
import { escapeHtml, sendPage, type PageLocale } from '../../http/page.ts';
import { AppError } from '../../lib/errors.ts';
import { requestMeta } from './accounts-routes.ts';
import type { AccountsServices } from './index.ts';
import { PASSWORD_MAX, PASSWORD_MIN } from './passwords.ts';
import { line, text } from './accounts-schemas.ts';
import { localeFromAcceptLanguage } from '../../lib/locale.ts';

const TEXT = {
  en: {
    verifyTitle: 'Confirm your e-mail address',
    verifyLead: 'Confirm that this address is yours to finish creating your Havre account.',
    verifyButton: 'Confirm my address',
    verified: 'Your e-mail address is confirmed. You can now create workspaces.',
    resetTitle: 'Choose a new password',
    newPassword: `New password (at least ${PASSWORD_MIN} characters)`,
    repeatPassword: 'Repeat the new password',
    resetButton: 'Set the password',
    resetDone: 'Your password is changed, and every session is signed out. Sign in with the new password.',
    inviteTitle: 'Join a company on Havre',
    inviteLead: 'Create your account to accept the invitation.',
    name: 'Your name',
    password: `Password (at least ${PASSWORD_MIN} characters)`,
    inviteButton: 'Create my account and join',
    inviteDone: (company: string) => `Welcome: you are now a member of ${company}.`,
    existingAccount: 'You already have a Havre account: sign in, then accept the invitation with POST /api/v1/invitations/accept and this token.',
    mismatch: 'The two passwords differ.',
    tooShort: `The password needs at least ${PASSWORD_MIN} characters.`,
    missingToken: 'This link is incomplete: open the full link from the e-mail.',
    invalidToken: 'This link is invalid, expired or already used.',
    failed: 'That did not work',
  },
  fr: {
    verifyTitle: 'Confirmez votre adresse e-mail',
    verifyLead: 'Confirmez que cette adresse est la vôtre pour terminer la création de votre compte Havre.',
    verifyButton: 'Confirmer mon adresse',
    verified: 'Votre adresse e-mail est confirmée. Vous pouvez maintenant créer des espaces de travail.',
    resetTitle: 'Choisissez un nouveau mot de passe',
    newPassword: `Nouveau mot de passe (au moins ${PASSWORD_MIN} caractères)`,
    repeatPassword: 'Répétez le nouveau mot de passe',
    resetButton: 'Enregistrer le mot de passe',
    resetDone: 'Votre mot de passe est changé et toutes les sessions sont fermées. Connectez-vous avec le nouveau mot de passe.',
    inviteTitle: 'Rejoindre une entreprise sur Havre',
    inviteLead: 'Créez votre compte pour accepter l’invitation.',
    name: 'Votre nom',
    password: `Mot de passe (au moins ${PASSWORD_MIN} caractères)`,
    inviteButton: 'Créer mon compte et rejoindre',
    inviteDone: (company: string) => `Bienvenue : vous êtes maintenant membre de ${company}.`,
    existingAccount: 'Vous avez déjà un compte Havre : connectez-vous, puis acceptez l’invitation avec POST /api/v1/invitations/accept et ce jeton.',
    mismatch: 'Les deux mots de passe sont différents.',
    tooShort: `Le mot de passe doit compter au moins ${PASSWORD_MIN} caractères.`,
    missingToken: 'Ce lien est incomplet : ouvrez le lien complet reçu par e-mail.',
    invalidToken: 'Ce lien est invalide, expiré ou déjà utilisé.',
    failed: 'L’opération n’a pas abouti',
  },
} as const;

const tokenValue = z.string().regex(/^[A-Za-z0-9_-]{16,128}$/);
const query = z.object({ token: line().max(200).optional(), lang: line().max(5).optional() });
const formBase = { token: line().max(200), lang: line().max(5).optional() };
const verifyForm = z.strictObject(formBase);
const resetForm = z.strictObject({ ...formBase, password: text().max(PASSWORD_MAX), repeat: text().max(PASSWORD_MAX) });
const inviteForm = z.strictObject({ ...formBase, name: line().max(200), password: text().max(PASSWORD_MAX) });

function localeOf(request: FastifyRequest, lang: string | undefined): PageLocale {
  return localeFromAcceptLanguage(request.headers['accept-language'], lang);
}

function hidden(token: string, locale: PageLocale): string {
  return `<input type="hidden" name="token" value="${escapeHtml(token)}"><input type="hidden" name="lang" value="${locale}">`;
}

function message(reply: FastifyReply, locale: PageLocale, title: string, text: string, ok: boolean) {
  return sendPage(reply, locale, title, `<p class="${ok ? 'ok' : 'error'}">${escapeHtml(text)}</p>`, ok ? 200 : 400);
}

/** A domain error as page text: known token errors in the page's language, others as the service says. */
function failure(reply: FastifyReply, locale: PageLocale, err: unknown) {
  if (!(err instanceof AppError) || err.status >= 500) throw err;
  const t = TEXT[locale];
  const text = err.code === 'invalid_token' ? t.invalidToken : err.code === 'sign_in_required' ? t.existingAccount : `${err.message} (${err.code})`;
  return message(reply, locale, t.failed, text, false);
}

export function accountsPages(services: AccountsServices): RoutePlugin {
  return (app) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    const page = { hide: true } as const;
    const form = { publicForm: true } as const;

    r.get('/verify-email', { schema: { ...page, querystring: query } }, async (request, reply) => {
      const locale = localeOf(request, request.query.lang);
      const t = TEXT[locale];
      const token = request.query.token ?? '';
      if (!tokenValue.safeParse(token).success) return message(reply, locale, t.verifyTitle, t.missingToken, false);
      return sendPage(reply, locale, t.verifyTitle, `<p>${t.verifyLead}</p><form method="post" action="/verify-email">${hidden(token, locale)}<button>${t.verifyButton}</button></form>`);
    });
    r.post('/verify-email', { schema: { ...page, body: verifyForm }, config: form }, async (request, reply) => {
      const locale = localeOf(request, request.body.lang);
      try {
        await services.identity.verifyEmail(request.body.token, request.ip);
        return message(reply, locale, TEXT[locale].verifyTitle, TEXT[locale].verified, true);
      } catch (err) {
        return failure(reply, locale, err);
      }
    });

    r.get('/reset-password', { schema: { ...page, querystring: query } }, async (request, reply) => {
      const locale = localeOf(request, request.query.lang);
      const t = TEXT[locale];
      const token = request.query.token ?? '';
      if (!tokenValue.safeParse(token).success) return message(reply, locale, t.resetTitle, t.missingToken, false);
      return sendPage(
        reply,
        locale,
        t.resetTitle,
        `<form method="post" action="/reset-password">${hidden(token, locale)}
<label for="password">${t.newPassword}</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN}">
<label for="repeat">${t.repeatPassword}</label><input id="repeat" name="repeat" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN}">
<button>${t.resetButton}</button></form>`,
      );
    });
    r.post('/reset-password', { schema: { ...page, body: resetForm }, config: form }, async (request, reply) => {
      const { token, password, repeat, lang } = request.body;
      const locale = localeOf(request, lang);
      const t = TEXT[locale];
      if (password !== repeat) return message(reply, locale, t.failed, t.mismatch, false);
      if (password.length < PASSWORD_MIN) return message(reply, locale, t.failed, t.tooShort, false);
      try {
        await services.passwordResets.completePasswordReset(token, password, request.ip);
        return message(reply, locale, t.resetTitle, t.resetDone, true);
      } catch (err) {
        return failure(reply, locale, err);
      }
    });

    r.get('/invitations/accept', { schema: { ...page, querystring: query } }, async (request, reply) => {
      const locale = localeOf(request, request.query.lang);
      const t = TEXT[locale];
      const token = request.query.token ?? '';
      if (!tokenValue.safeParse(token).success) return message(reply, locale, t.inviteTitle, t.missingToken, false);
      return sendPage(
        reply,
        locale,
        t.inviteTitle,
        `<p>${t.inviteLead}</p><form method="post" action="/invitations/accept">${hidden(token, locale)}
<label for="name">${t.name}</label><input id="name" name="name" autocomplete="name" required maxlength="200">
<label for="password">${t.password}</label><input id="password" name="password" type="password" autocomplete="new-password" required minlength="${PASSWORD_MIN}">
<button>${t.inviteButton}</button></form><p>${escapeHtml(t.existingAccount)}</p>`,
      );
    });
    r.post('/invitations/accept', { schema: { ...page, body: inviteForm }, config: form }, async (request, reply) => {
      const { token, name, password, lang } = request.body;
      const locale = localeOf(request, lang);
      const t = TEXT[locale];
      if (password.length < PASSWORD_MIN) return message(reply, locale, t.failed, t.tooShort, false);
      if (!name.trim()) return message(reply, locale, t.failed, t.name, false);
      try {
        const result = await services.invitations.accept(null, { token, name: name.trim(), password, locale }, requestMeta(request));
        return message(reply, locale, t.inviteTitle, t.inviteDone(result.customer.name), true);
      } catch (err) {
        return failure(reply, locale, err);
      }
    });
  };
}
