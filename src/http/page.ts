/**
 * Minimal server-rendered pages (landing page, the pages behind e-mailed links) until the web app
 * arrives: escaped text only, no script, a strict content security policy, French or English.
 */
import type { FastifyReply } from 'fastify';
import type { Locale } from '../lib/locale.ts';

export type PageLocale = Locale;

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Sends an HTML page; `body` must already be escaped HTML. */
export function sendPage(reply: FastifyReply, locale: PageLocale, title: string, body: string, status = 200): FastifyReply {
  return reply
    .status(status)
    .type('text/html; charset=utf-8')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .header('content-language', locale)
    .header('cache-control', 'no-store')
    .send(`<!doctype html>
<html lang="${locale}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b2a3a}a{color:#0b5cad}
label{display:block;margin:.8rem 0 .2rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}button{font:inherit;margin-top:1rem;padding:.5rem 1.2rem}
.error{color:#a4161a}.ok{color:#1b6e3c}</style>
</head><body><h1>${escapeHtml(title)}</h1>
${body}
</body></html>`);
}
