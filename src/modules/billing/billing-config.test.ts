/** The billing configuration: placeholders of the seller identity are refused in production (BIL-9 mentions must be real); plans come from config (BIL-1). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/config.ts';
import { DEFAULT_PLANS } from './plans.ts';

const base = { home: '/tmp/havre-billing-config-test', databaseUrl: 'postgres://localhost/x', masterKey: randomBytes(32).toString('base64') };
const seller = { name: 'Havre', legalForm: 'SAS', shareCapital: '10 000 €', address: '12 rue des Docks, 76600 Le Havre', siren: '732829320', rcsCity: 'Le Havre', vatNumber: 'FR44732829320' };

describe('billing configuration', () => {
  it('[BIL-9] production refuses a placeholder seller identity, naming each field; development accepts it', () => {
    expect(() => loadConfig({}, { ...base, env: 'production' })).toThrow(/billing\.seller\.siren: is a placeholder/);
    expect(() => loadConfig({}, { ...base, env: 'production', billing: { seller: { ...seller, rcsCity: 'PLACEHOLDER' } } })).toThrow(/billing\.seller\.rcsCity/);
    expect(loadConfig({}, { ...base, env: 'production', billing: { seller } }).billing.seller.siren).toBe('732829320');
    expect(loadConfig({}, { ...base, env: 'development' }).billing.paymentTermsDays).toBe(30);
  });

  it('[BIL-1] the plan table defaults to the published one and can be replaced; duplicate codes are refused', () => {
    const c = loadConfig({}, { ...base, env: 'development' });
    expect(c.billing.plans.map((p) => [p.code, p.priceCents])).toEqual(DEFAULT_PLANS.map((p) => [p.code, p.priceCents]));
    expect(c.billing.recoveryIndemnityCents).toBe(4000);
    expect(() => loadConfig({}, { ...base, billing: { plans: [DEFAULT_PLANS[0], DEFAULT_PLANS[0]] } })).toThrow(/plan codes must be distinct/);
  });
});
