import { describe, expect, it } from 'vitest';
import { localeFromAcceptLanguage } from './locale.ts';

describe('language detection', () => {
  it('[ACC-6] takes the first of French or English the browser lists, English otherwise; an explicit choice wins', () => {
    expect(localeFromAcceptLanguage('fr-FR,fr;q=0.9,en;q=0.8')).toBe('fr');
    expect(localeFromAcceptLanguage('de-DE,fr;q=0.7,en;q=0.5')).toBe('fr');
    expect(localeFromAcceptLanguage('de-DE,en;q=0.5')).toBe('en');
    expect(localeFromAcceptLanguage('es-ES')).toBe('en');
    expect(localeFromAcceptLanguage(undefined)).toBe('en');
    expect(localeFromAcceptLanguage('fr-FR', 'en')).toBe('en');
    expect(localeFromAcceptLanguage('en', 'xx')).toBe('en');
  });
});
