import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.ts';

const key = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)).toString('base64');

describe('configuration', () => {
  it('has embedded defaults: port 8080, regions fr and de, 14-day trial', () => {
    const c = loadConfig({ HAVRE_HOME: '/tmp/havre-x' });
    expect(c.home).toBe('/tmp/havre-x');
    expect(c.http.port).toBe(8080);
    expect(c.tenants.regions).toEqual(['fr', 'de']);
    expect(c.tenants.trialDays).toBe(14);
    expect(c.databaseUrl).toBeUndefined();
  });

  it('reads the file, then the environment, then overrides, and freezes the result', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'havre-cfg-'));
    await writeFile(path.join(home, 'havre.json'), JSON.stringify({ http: { port: 9000 }, tenants: { warmPoolSize: 7 } }));
    const c = loadConfig({ HAVRE_HOME: home, HAVRE_PORT: '9100' }, { tenants: { trialDays: 30 } });
    expect(c.http.port).toBe(9100);
    expect(c.tenants.warmPoolSize).toBe(7);
    expect(c.tenants.trialDays).toBe(30);
    expect(Object.isFrozen(c.tenants)).toBe(true);
  });

  it('fails fast, naming every bad setting', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'havre-cfg-'));
    await writeFile(path.join(home, 'havre.json'), JSON.stringify({ tenants: { warmPoolSize: -1, colour: 'blue' } }));
    const attempt = () => loadConfig({ HAVRE_HOME: home, HAVRE_PORT: 'eighty' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/http\.port/);
    expect(attempt).toThrow(/tenants\.warmPoolSize/);
    expect(attempt).toThrow(/colour/);
  });

  it('refuses broken JSON in the configuration file', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'havre-cfg-'));
    await writeFile(path.join(home, 'havre.json'), '{ nope');
    expect(() => loadConfig({ HAVRE_HOME: home })).toThrow(/not valid JSON/);
  });

  it('requires an external database and a real master key in production, and refuses placeholder keys', () => {
    expect(() => loadConfig({ HAVRE_HOME: '/tmp/p', HAVRE_ENV: 'production' })).toThrow(/HAVRE_DATABASE_URL is required[\s\S]*HAVRE_MASTER_KEY is required/);
    const zeros = Buffer.alloc(32).toString('base64');
    expect(() => loadConfig({ HAVRE_HOME: '/tmp/p', HAVRE_MASTER_KEY: zeros })).toThrow(/placeholder/);
    expect(() => loadConfig({ HAVRE_HOME: '/tmp/p', HAVRE_MASTER_KEY: 'c2hvcnQ=' })).toThrow(/32 bytes/);
    const production = { HAVRE_HOME: '/tmp/p', HAVRE_ENV: 'production', HAVRE_DATABASE_URL: 'postgres://x@db/havre', HAVRE_MASTER_KEY: key };
    // Invoices need the real seller identity (BIL-9): placeholders stop a production start.
    expect(() => loadConfig(production)).toThrow(/billing\.seller\.siren: is a placeholder/);
    const seller = { name: 'Havre', legalForm: 'SAS', shareCapital: '10 000 €', address: '12 rue des Docks, 76600 Le Havre, France', siren: '732829320', rcsCity: 'Le Havre', vatNumber: 'FR44732829320' };
    const ok = loadConfig(production, { billing: { seller } });
    expect(ok.env).toBe('production');
  });
});
