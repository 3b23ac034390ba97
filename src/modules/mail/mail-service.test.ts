import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../../../test/context.ts';
import { createMailer, retryDelayMs } from './mail-service.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await createTestContext();
});
afterAll(async () => ctx?.close());

interface Received {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server on a loopback port, recording what it receives; `failNext` rejects messages. */
async function startSmtp() {
  const received: Received[] = [];
  let failNext = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (failNext > 0) {
          failNext--;
          const err = new Error('mailbox unavailable') as Error & { responseCode: number };
          err.responseCode = 450;
          return callback(err);
        }
        received.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    failOnce: () => {
      failNext++;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('mailer', () => {
  it('keeps messages in the local outbox when no SMTP server is configured', async () => {
    const { id } = await ctx.core.mailer.send({ to: 'Someone@Example.test', template: 'test', locale: 'fr', subject: 'Bonjour', text: 'Corps du message' });
    const listed = await ctx.core.mailer.list({ to: 'someone@example.test' });
    expect(listed.map((m) => m.id)).toContain(id);
    const shown = await ctx.core.mailer.show(id);
    expect(shown).toMatchObject({ to: 'someone@example.test', subject: 'Bonjour', status: 'stored', text: 'Corps du message' });
    expect(await ctx.core.mailer.show('not-an-id')).toBeNull();
    expect(await ctx.core.mailer.show('-'.repeat(36))).toBeNull(); // not a uuid: no query at all
  });

  it('delivers through a real SMTP server, and never sends a message twice', async () => {
    const smtp = await startSmtp();
    const mailer = createMailer({ db: ctx.core.db, clock: ctx.core.clock, from: 'Havre <no-reply@havre.test>', smtpUrl: smtp.url });
    try {
      const { id } = await mailer.send({ to: 'owner@example.test', template: 'test', locale: 'en', subject: 'Welcome', text: 'Hello there' });
      // Two delivery passes at once (two workers): the claim lets only one send it.
      const sent = await Promise.all([mailer.deliverPending(), mailer.deliverPending()]);
      expect(sent[0]! + sent[1]!).toBe(1);
      expect(smtp.received).toHaveLength(1);
      expect(smtp.received[0]!.to).toEqual(['owner@example.test']);
      expect(smtp.received[0]!.raw).toContain('Subject: Welcome');
      expect(smtp.received[0]!.raw).toContain('Hello there');
      expect((await mailer.show(id))?.status).toBe('sent');
      expect(await mailer.deliverPending()).toBe(0);
    } finally {
      await smtp.close();
    }
  });

  it('backs off after a temporary failure, and a failing message does not hold up the others', async () => {
    const smtp = await startSmtp();
    const mailer = createMailer({ db: ctx.core.db, clock: ctx.core.clock, from: 'Havre <no-reply@havre.test>', smtpUrl: smtp.url });
    try {
      const first = await mailer.send({ to: 'first@example.test', template: 'test', locale: 'en', subject: 'First', text: 'one' });
      ctx.clock.advance(1000);
      const second = await mailer.send({ to: 'second@example.test', template: 'test', locale: 'en', subject: 'Second', text: 'two' });
      smtp.failOnce();
      expect(await mailer.deliverPending()).toBe(1); // the first fails, the second still goes out
      expect(smtp.received.map((m) => m.to[0])).toEqual(['second@example.test']);
      expect((await mailer.show(first.id))?.status).toBe('pending');
      expect((await mailer.show(second.id))?.status).toBe('sent');

      ctx.clock.advance(20_000); // before the 30-second back-off: not retried yet
      expect(await mailer.deliverPending()).toBe(0);
      ctx.clock.advance(11_000);
      expect(await mailer.deliverPending()).toBe(1);
      expect((await mailer.show(first.id))?.status).toBe('sent');
    } finally {
      await smtp.close();
    }
  });

  it('takes over a message whose worker died mid-send once its claim expires', async () => {
    const smtp = await startSmtp();
    const mailer = createMailer({ db: ctx.core.db, clock: ctx.core.clock, from: 'Havre <no-reply@havre.test>', smtpUrl: smtp.url });
    try {
      const { id } = await mailer.send({ to: 'orphan@example.test', template: 'test', locale: 'en', subject: 'Orphan', text: 'x' });
      // A worker claimed it and was killed before recording the outcome.
      await ctx.core.db.updateTable('mail_outbox').set({ status: 'sending', locked_until: new Date(ctx.clock.now().getTime() + 120_000) }).where('id', '=', id).execute();
      expect(await mailer.deliverPending()).toBe(0);
      ctx.clock.advance(121_000);
      expect(await mailer.deliverPending()).toBe(1);
      expect((await mailer.show(id))?.status).toBe('sent');
    } finally {
      await smtp.close();
    }
  });

  it('gives up after the last attempt, with back-off doubling up to two hours', () => {
    expect([1, 2, 3, 4].map(retryDelayMs)).toEqual([30_000, 60_000, 120_000, 240_000]);
    expect(retryDelayMs(20)).toBe(2 * 3_600_000);
  });

  it('a message queued in a rolled-back transaction is never sent', async () => {
    await expect(
      ctx.core.db.transaction().execute(async (trx) => {
        await ctx.core.mailer.send({ to: 'ghost@example.test', template: 'test', locale: 'en', subject: 'x', text: 'y' }, trx);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await ctx.core.mailer.list({ to: 'ghost@example.test' })).toHaveLength(0);
  });
});
