/**
 * The landing page at `/`: says what this server is and where the API and its documentation are,
 * in French or English from the browser's Accept-Language (ACC-6). The full web app comes later.
 */
import type { FastifyInstance } from 'fastify';

const TEXT = {
  en: {
    title: 'Havre',
    lead: 'Business applications hosted with every promise of the privacy policy and the terms of sale kept by code.',
    api: 'API documentation',
    spec: 'OpenAPI document',
    health: 'Service status',
  },
  fr: {
    title: 'Havre',
    lead: 'Des applications de gestion hébergées, dont chaque engagement de la politique de confidentialité et des conditions de vente est tenu par le code.',
    api: 'Documentation de l’API',
    spec: 'Document OpenAPI',
    health: 'État du service',
  },
} as const;

export function pickLocale(acceptLanguage: string | undefined): 'fr' | 'en' {
  const first = (acceptLanguage ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  return first.startsWith('fr') ? 'fr' : 'en';
}

export function registerLandingPage(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const lang = pickLocale(request.headers['accept-language']);
    const t = TEXT[lang];
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
      .header('content-language', lang);
    return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t.title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b2a3a}a{color:#0b5cad}</style>
</head><body><h1>${t.title}</h1><p>${t.lead}</p>
<ul><li><a href="/api/docs">${t.api}</a></li><li><a href="/api/openapi.json">${t.spec}</a></li><li><a href="/readyz">${t.health}</a></li></ul>
</body></html>`;
  });
}
