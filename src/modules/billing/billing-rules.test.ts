/** The pure billing rules, table-driven: plans (BIL-1), proration (BIL-4), termination (BIL-5), overuse (BIL-6), price changes (BIL-7), VAT (BIL-8). */
import { describe, expect, it } from 'vitest';
import { daysInMonth, issueDateOf, mulDivHalfUp, priceChangeWindow, prorataCents, terminationLastDay } from './billing-dates.ts';
import { DEFAULT_PLANS, overuse, planByCode, smallestCoveringPlan } from './plans.ts';
import { normalizeVatNumber, vatAmounts, vatNumberLooksValid, vatTreatment } from './vat.ts';

const GB = 1e9;
const plan = (code: string) => planByCode(DEFAULT_PLANS, code)!;

describe('plans', () => {
  it('[BIL-1] the six plans of the terms: price excl. VAT, CPU hours, database, storage, support', () => {
    expect(DEFAULT_PLANS.map((p) => [p.priceCents, p.cpuHours, p.databaseBytes / GB, p.storageBytes / GB, p.support, p.blockingResponseHours])).toEqual([
      [1900, 0.5, 0.5, 1, 'none', null],
      [4900, 1, 1, 2, 'none', null],
      [9900, 1.5, 1, 10, 'standard', null],
      [19900, 2, 1, 20, 'standard', null],
      [49900, 4, 1, 40, 'premium', 8],
      [99900, 6, 1, 100, 'premium', 4],
    ]);
  });

  it.each([
    ['within the plan', 'p49', { cpuHours: 1, peakDatabaseBytes: 1 * GB, peakStorageBytes: 2 * GB }, null, 0],
    ['CPU over: the smallest plan with enough CPU', 'p49', { cpuHours: 1.2, peakDatabaseBytes: 0.1 * GB, peakStorageBytes: 0.1 * GB }, 'p99', 5000],
    ['storage over by one byte', 'p19', { cpuHours: 0.1, peakDatabaseBytes: 0.1 * GB, peakStorageBytes: 1 * GB + 1 }, 'p49', 3000],
    ['database over 0.5 GB on the smallest plan', 'p19', { cpuHours: 0.1, peakDatabaseBytes: 0.6 * GB, peakStorageBytes: 0 }, 'p49', 3000],
    ['several limits over: the plan covering all', 'p49', { cpuHours: 3, peakDatabaseBytes: 0.9 * GB, peakStorageBytes: 30 * GB }, 'p499', 45000],
  ])('[BIL-6] %s', (_title, current, usage, upgradeTo, charge) => {
    const out = overuse(DEFAULT_PLANS, plan(current), usage);
    if (upgradeTo === null) expect(out).toEqual({ kind: 'within_plan' });
    else expect(out).toEqual({ kind: 'upgrade', upgradeTo: plan(upgradeTo), chargeCents: charge });
  });

  it('[BIL-6] usage beyond every plan moves to the largest, charged the difference, flagged for the operator', () => {
    expect(smallestCoveringPlan(DEFAULT_PLANS, { cpuHours: 7, peakDatabaseBytes: 0, peakStorageBytes: 0 })).toBeNull();
    expect(overuse(DEFAULT_PLANS, plan('p99'), { cpuHours: 7, peakDatabaseBytes: 0, peakStorageBytes: 0 })).toEqual({ kind: 'beyond_largest', upgradeTo: plan('p999'), chargeCents: 90000 });
  });
});

describe('calendar rules', () => {
  it.each([
    // price, start date, expected: price × (days from start, inclusive, to month end) ÷ days in month, half-up
    [4900, '2026-02-01', 4900], // a start on the 1st: the full month
    [4900, '2026-02-28', 175], // last day of a 28-day month: 4900/28 = 175
    [4900, '2028-02-29', 169], // leap February, last day: 4900/29 = 168.97 → 169
    [4900, '2026-04-30', 163], // 30-day month, last day: 163.33 → 163
    [4900, '2026-01-31', 158], // 31-day month, last day: 158.06 → 158
    [1900, '2026-03-16', 981], // 1900 × 16/31 = 980.645 → 981
    [9900, '2026-03-29', 958], // the DST week: still whole days: 9900 × 3/31 = 958.06 → 958
    [1000, '2026-04-16', 500], // exactly half: 1000 × 15/30 = 500
    [99900, '2026-06-16', 49950], // 99900 × 15/30
    [3, '2026-04-16', 2], // 3 × 15/30 = 1.5 → half-up 2
  ])('[BIL-4] %i cents from %s: %i', (price, start, expected) => {
    expect(prorataCents(price, start)).toBe(expected);
  });

  it('[BIL-4] rounds half-up exactly, without floating point', () => {
    expect(mulDivHalfUp(1, 1, 2)).toBe(1);
    expect(mulDivHalfUp(1, 1, 3)).toBe(0);
    expect(mulDivHalfUp(2, 1, 3)).toBe(1);
    expect(mulDivHalfUp(9_007_199_254, 1_000_000, 7)).toBe(Number((9_007_199_254n * 1_000_000n * 2n + 7n) / 14n));
    expect(() => mulDivHalfUp(-1, 1, 2)).toThrow();
    expect([28, 29, 30, 31].map((d) => d)).toEqual([daysInMonth(2026, 2), daysInMonth(2028, 2), daysInMonth(2026, 4), daysInMonth(2026, 1)]);
  });

  it('[BIL-3] the invoice of a month is issued on its 1st', () => {
    expect(issueDateOf('2026-12')).toBe('2026-12-01');
    expect(() => issueDateOf('2026-13')).toThrow();
  });

  it.each([
    ['2026-01-15T10:00:00Z', '2026-02-28'],
    ['2026-01-31T22:59:59Z', '2026-02-28'], // 23:59:59 on 31 January in Paris (UTC+1)
    ['2026-01-31T23:00:00Z', '2026-03-31'], // midnight: 1 February in Paris → end of March
    ['2026-01-31T12:00:00Z', '2026-02-28'],
    ['2026-11-30T23:30:00Z', '2027-01-31'], // 1 December in Paris → end of January
    ['2026-12-10T09:00:00Z', '2027-01-31'],
    ['2027-12-31T12:00:00Z', '2028-01-31'],
    ['2028-01-05T12:00:00Z', '2028-02-29'],
  ])('[BIL-5] a notice received at %s ends the contract on %s (end of the following month, Paris)', (received, lastDay) => {
    expect(terminationLastDay(new Date(received))).toBe(lastDay);
  });

  it('[BIL-7] a price change needs 60 days of notice; the customer may terminate within 30 days, effective before the new price', () => {
    expect(priceChangeWindow(new Date('2026-01-01T10:00:00Z'), '2026-03-02')).toEqual({ objectionUntil: '2026-01-31', terminationLastDay: '2026-03-01' });
    expect(() => priceChangeWindow(new Date('2026-01-01T10:00:00Z'), '2026-03-01')).toThrow(/at least 60 days/);
    // The notice's Paris date counts: 23:30 UTC on 31 December is 1 January in Paris.
    expect(priceChangeWindow(new Date('2025-12-31T23:30:00Z'), '2026-03-02').objectionUntil).toBe('2026-01-31');
  });
});

describe('VAT', () => {
  it.each([
    ['FR', 'FR40303265045', true], // key 40 for SIREN 303265045
    ['FR', 'FR41303265045', false], // wrong key
    ['FR', 'FR 40 303 265 045', true],
    ['DE', 'DE123456789', true],
    ['DE', 'DE12345678', false],
    ['GR', 'EL123456789', true],
    ['GR', 'GR123456789', false],
    ['NL', 'NL123456789B01', true],
    ['AT', 'ATU12345678', true],
    ['BE', 'BE0123456789', true],
    ['ES', 'ESX1234567X', true],
    ['IT', 'DE12345678901', false], // another country's prefix
  ])('[BIL-8] %s VAT number %s looks valid: %s', (country, number, ok) => {
    expect(vatNumberLooksValid(country, number)).toBe(ok);
  });

  it('[BIL-8] France 20 %; EU business with a valid number: reverse charge with the mention; outside the EU: no French VAT', () => {
    expect(vatAmounts(4900, vatTreatment({ country: 'FR', vatNumber: 'FR40303265045' }))).toEqual({ netCents: 4900, vatCents: 980, grossCents: 5880 });
    const reverse = vatTreatment({ country: 'DE', vatNumber: 'de 123 456 789' });
    expect(reverse.kind).toBe('reverse_charge');
    expect(reverse.mention?.fr).toContain('Autoliquidation');
    expect(reverse.mention?.en).toContain('DE123456789');
    expect(vatAmounts(4900, reverse)).toEqual({ netCents: 4900, vatCents: 0, grossCents: 4900 });
    expect(vatTreatment({ country: 'DE', vatNumber: 'DE123456789', viesValid: false }).kind).toBe('french_vat');
    expect(vatTreatment({ country: 'DE' }).kind).toBe('french_vat');
    const outside = vatTreatment({ country: 'CH', vatNumber: 'CHE123456789' });
    expect(outside.kind).toBe('outside_eu');
    expect(vatAmounts(99900, outside).vatCents).toBe(0);
    // Half-up on the invoice total: 20 % of 1,999 cents = 399.8 → 400.
    expect(vatAmounts(1999, vatTreatment({ country: 'FR' })).vatCents).toBe(400);
    expect(vatAmounts(1997, vatTreatment({ country: 'FR' })).vatCents).toBe(399);
    expect(normalizeVatNumber('fr-40.303 265 045')).toBe('FR40303265045');
  });
});
