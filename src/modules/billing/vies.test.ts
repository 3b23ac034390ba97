/** BIL-8: the pluggable VIES check, against a local server speaking the VIES REST answers (no network here). */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMember } from '../../../test/factories.ts';
import { createBillingProfiles } from './billing-profile.ts';
import { createViesRegistry } from './vies.ts';

let server: http.Server;
let base: string;
let ctx: TestContext;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const m = /^\/ms\/([A-Z]{2})\/vat\/([A-Z0-9]+)$/.exec(req.url ?? '');
    if (!m || m[1] === 'IT') {
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ countryCode: m[1], vatNumber: m[2], isValid: m[2] === '123456789' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ctx = await createTestContext();
});
afterAll(async () => {
  server?.close();
  await ctx?.close();
});

describe('VIES', () => {
  it('[BIL-8] a number VIES does not know is refused; when VIES cannot answer, the format check alone decides', async () => {
    const vies = createViesRegistry({ baseUrl: base });
    expect(await vies.check('DE', 'DE123456789')).toBe(true);
    expect(await vies.check('DE', 'DE999999999')).toBe(false);
    expect(await vies.check('IT', 'IT12345678901')).toBeUndefined(); // service down
    expect(await createViesRegistry({ baseUrl: 'http://127.0.0.1:9', timeoutMs: 500 }).check('DE', 'DE123456789')).toBeUndefined(); // offline

    const member = await createMember(ctx);
    await ctx.core.db.updateTable('customers').set({ country: 'DE' }).where('id', '=', member.customerId).execute();
    const profiles = createBillingProfiles({ db: ctx.core.db, clock: ctx.core.clock, audit: ctx.core.audit, registry: vies });
    await expect(profiles.update(member.customerId, { vatNumber: 'DE999999999' }, { type: 'user' })).rejects.toMatchObject({ code: 'vat_number_not_registered' });
    expect((await profiles.update(member.customerId, { vatNumber: 'DE 123 456 789' }, { type: 'user' })).vatNumber).toBe('DE123456789');
  });
});
