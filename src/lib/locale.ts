/**
 * ACC-6: the language of a page, e-mail or document, from the browser's Accept-Language: the
 * first of French or English it lists (in its order of preference), English when it lists neither.
 * An explicit choice (`override`, e.g. a form's hidden field or the account's setting) wins.
 */
export type Locale = 'fr' | 'en';

export function localeFromAcceptLanguage(header: string | undefined, override?: string): Locale {
  if (override === 'fr' || override === 'en') return override;
  for (const part of (header ?? '').split(',')) {
    const tag = part.trim().slice(0, 2).toLowerCase();
    if (tag === 'fr' || tag === 'en') return tag;
  }
  return 'en';
}
