/**
 * `havre migrate`, `havre audit verify`, `havre mail list|show`: commands over the core services.
 */
import type { Command } from 'commander';
import type { CliRunner } from './context.ts';

export function registerMaintenanceCommands(program: Command, run: CliRunner): void {
  program
    .command('migrate')
    .description('apply pending control-plane database migrations (also done by `havre start`)')
    .action(() =>
      run([], async ({ say }) => {
        // The runner has already migrated to the latest version before calling us.
        say('control-plane database is up to date');
      }),
    );

  const audit = program.command('audit').description('the append-only, hash-chained audit log (SEC-4)');
  audit
    .command('verify')
    .description('recompute the hash chain and report altered, missing or reordered entries')
    .option('--expect-head <seq:hash>', 'also check that an entry recorded earlier is still in the chain (detects cut-off tails)')
    .action((opts: { expectHead?: string }) =>
      run([], async ({ core, print }) => {
        let expectHead: { seq: string; hash: string } | undefined;
        if (opts.expectHead) {
          const m = /^(\d+):([0-9a-f]{64})$/.exec(opts.expectHead);
          if (!m) throw new Error('--expect-head takes <seq>:<sha256 hex>, as printed by a previous `havre audit verify`');
          expectHead = { seq: m[1]!, hash: m[2]! };
        }
        const result = await core.audit.verify(expectHead ? { expectHead } : {});
        print(result, (r) =>
          r.ok
            ? `audit log intact: ${r.checked} entries verified; head ${r.head ? `${r.head.seq}:${r.head.hash}` : '(empty)'}`
            : [`AUDIT LOG TAMPERED: ${r.problems.length} problem(s) in ${r.checked} entries`, ...r.problems.map((p) => `  entry ${p.seq}: ${p.kind} — ${p.detail}`)].join('\n'),
        );
        if (!result.ok) process.exitCode = 3;
      }),
    );

  const mail = program.command('mail').description('e-mails sent by Havre (the local outbox when no SMTP server is configured)');
  mail
    .command('list')
    .description('list recent e-mails, newest first')
    .option('--to <email>', 'only those sent to this address')
    .option('--limit <n>', 'how many', '20')
    .action((opts: { to?: string; limit: string }) =>
      run([], async ({ core, print }) => {
        const limit = Number.parseInt(opts.limit, 10);
        if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new Error('--limit takes a whole number from 1 to 1000');
        const list = await core.mailer.list({ ...(opts.to ? { to: opts.to } : {}), limit });
        print(list, (rows) =>
          rows.length === 0
            ? 'no e-mail yet'
            : rows.map((m) => `${m.id}  ${m.createdAt.toISOString()}  ${m.status.padEnd(7)}  ${m.to}  ${m.subject}`).join('\n'),
        );
      }),
    );
  mail
    .command('show')
    .description('show one e-mail in full')
    .argument('<id>', 'the e-mail id from `havre mail list`')
    .action((id: string) =>
      run([], async ({ core, print }) => {
        const m = await core.mailer.show(id);
        if (!m) throw new Error(`no e-mail with id ${id}`);
        print(m, (x) => `To: ${x.to}\nSubject: ${x.subject}\nDate: ${x.createdAt.toISOString()}\nStatus: ${x.status}\n\n${x.text}`);
      }),
    );
}
