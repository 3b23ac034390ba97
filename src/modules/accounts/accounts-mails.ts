/**
 * E-mails of the accounts module, in French and English (ACC-6). Each returns a MailMessage for
 * the one mailer; links point at the public URL of this Havre (or localhost in the embedded default).
 * Tokens appear in the body only, never in the subject (subjects show up in mail logs).
 */
import type { MailMessage } from '../mail/mail-service.ts';
import type { Locale, MemberRole } from './accounts-tables.ts';

export interface MailContext {
  baseUrl: string;
}

const ROLE_NAMES: Record<Locale, Record<MemberRole, string>> = {
  en: { owner: 'owner', administrator: 'administrator', collaborator: 'collaborator' },
  fr: { owner: 'propriétaire', administrator: 'administrateur', collaborator: 'collaborateur' },
};

type Recipient = { email: string; userId: string | null; locale: Locale };

/** One message in the recipient's language: `fr` and `en` are [subject, text]. */
function message(to: Recipient, template: string, texts: Record<Locale, [subject: string, text: string]>): MailMessage {
  const [subject, text] = texts[to.locale];
  return { to: to.email, userId: to.userId, template, locale: to.locale, subject, text };
}

function link(ctx: MailContext, path: string, token: string): string {
  return `${ctx.baseUrl.replace(/\/+$/, '')}${path}?token=${encodeURIComponent(token)}`;
}

export function verificationMail(ctx: MailContext, to: { email: string; userId: string; name: string; locale: Locale }, token: string, ttlHours: number): MailMessage {
  const url = link(ctx, '/verify-email', token);
  return message(to, 'accounts.verify_email', {
    fr: ['Confirmez votre adresse e-mail', `Bonjour ${to.name},\n\nConfirmez votre adresse e-mail en ouvrant ce lien (valable ${ttlHours} heures) :\n${url}\n\nOu saisissez ce code : ${token}\n\nSi vous n'avez pas créé de compte Havre, ignorez ce message.\n`],
    en: ['Confirm your e-mail address', `Hello ${to.name},\n\nConfirm your e-mail address by opening this link (valid for ${ttlHours} hours):\n${url}\n\nOr enter this code: ${token}\n\nIf you did not create a Havre account, ignore this message.\n`],
  });
}

export function passwordResetMail(ctx: MailContext, to: { email: string; userId: string; name: string; locale: Locale }, token: string, ttlMinutes: number): MailMessage {
  const url = link(ctx, '/reset-password', token);
  return message(to, 'accounts.password_reset', {
    fr: ['Réinitialisation de votre mot de passe', `Bonjour ${to.name},\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable ${ttlMinutes} minutes, une seule fois) :\n${url}\n\nCode : ${token}\n\nSi vous n'avez rien demandé, ignorez ce message : votre mot de passe reste inchangé.\n`],
    en: ['Reset your password', `Hello ${to.name},\n\nTo choose a new password, open this link (valid for ${ttlMinutes} minutes, once):\n${url}\n\nCode: ${token}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n`],
  });
}

export function invitationMail(
  ctx: MailContext,
  to: { email: string; userId: string | null; locale: Locale },
  invitation: { inviterName: string; customerName: string; role: MemberRole; ttlDays: number },
  token: string,
): MailMessage {
  const url = link(ctx, '/invitations/accept', token);
  const { fr, en } = { fr: ROLE_NAMES.fr[invitation.role], en: ROLE_NAMES.en[invitation.role] };
  return message(to, 'accounts.invitation', {
    fr: [`Invitation à rejoindre ${invitation.customerName}`, `Bonjour,\n\n${invitation.inviterName} vous invite à rejoindre ${invitation.customerName} sur Havre avec le rôle ${fr}.\n\nAcceptez l'invitation (valable ${invitation.ttlDays} jours) :\n${url}\n\nCode : ${token}\n`],
    en: [`Invitation to join ${invitation.customerName}`, `Hello,\n\n${invitation.inviterName} invites you to join ${invitation.customerName} on Havre as ${en}.\n\nAccept the invitation (valid for ${invitation.ttlDays} days):\n${url}\n\nCode: ${token}\n`],
  });
}

/** Sent after a password change or reset (which also revoke every API token), so that a hijacked account is noticed. */
export function passwordChangedMail(to: { email: string; userId: string; name: string; locale: Locale }): MailMessage {
  return message(to, 'accounts.password_changed', {
    fr: ['Votre mot de passe a été modifié', `Bonjour ${to.name},\n\nLe mot de passe de votre compte Havre vient d'être modifié : vos autres sessions ont été fermées et tous vos jetons d'API révoqués (créez-en de nouveaux si besoin). Si ce n'était pas vous, réinitialisez-le immédiatement et contactez le support.\n`],
    en: ['Your password was changed', `Hello ${to.name},\n\nThe password of your Havre account was just changed: your other sessions were closed and all your API tokens revoked (create new ones if you need them). If this was not you, reset it at once and contact support.\n`],
  });
}
