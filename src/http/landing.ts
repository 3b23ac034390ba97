/**
 * The landing page at `/`: says what this server is and where the API and its documentation are,
 * in French or English from the browser's Accept-Language (ACC-6). The full web app comes later.
 */
import type { FastifyInstance } from 'fastify';
import { sendPage } from './page.ts';
import { localeFromAcceptLanguage } from '../lib/locale.ts';

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

export function registerLandingPage(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true } }, async (request, reply) => {
    const lang = localeFromAcceptLanguage(request.headers['accept-language']);
    const t = TEXT[lang];
    return sendPage(
      reply,
      lang,
      t.title,
      `<p>${t.lead}</p>
<ul><li><a href="/api/docs">${t.api}</a></li><li><a href="/api/openapi.json">${t.spec}</a></li><li><a href="/readyz">${t.health}</a></li></ul>`,
    );
  });
}
