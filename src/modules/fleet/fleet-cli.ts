/** CLI commands of the fleet module: `havre server add|list`. */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import type { ServerView } from './servers.ts';

function table(servers: ServerView[]): string {
  if (servers.length === 0) return 'no database server registered (add one with `havre server add --region fr --url postgres://…`)';
  const header = ['NAME', 'REGION', 'ADDRESS', 'STATUS', 'ASSIGNED', 'POOLED'];
  const rows = servers.map((s) => [s.name, s.region, s.address, s.status, `${s.assignedDatabases}/${s.maxTenants}`, String(s.pooledDatabases)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (!text) throw new Error('--url - expects the URL on standard input');
  return text;
}

export function registerServerCommands(program: Command, run: CliRunner): void {
  const server = program.command('server').description('database servers that host tenant databases, per region (TEN-2)');

  server
    .command('add')
    .description('register an existing PostgreSQL server in a region (Havre checks its version and privileges, and hardens it)')
    .requiredOption('--region <code>', 'region of the server, e.g. fr')
    .requiredOption('--url <url>', 'admin connection URL, postgres://user:password@host:5432/postgres (the role needs CREATEDB and CREATEROLE); `-` reads it from standard input, keeping the password out of the process list')
    .option('--name <name>', 'a name for the server (default: derived from region and address)')
    .option('--max-tenants <n>', 'how many tenant databases it may hold')
    .action((opts: { region: string; url: string; name?: string; maxTenants?: string }) =>
      run(['fleet'], async ({ modules, print, say }) => {
        let maxTenants: number | undefined;
        if (opts.maxTenants !== undefined) {
          maxTenants = Number(opts.maxTenants);
          if (!Number.isInteger(maxTenants) || maxTenants < 1) throw new Error('--max-tenants takes a whole number ≥ 1');
        }
        try {
          const adminUrl = opts.url === '-' ? await readStdin() : opts.url;
          const added = await modules.fleet.servers.add({ region: opts.region, adminUrl, ...(opts.name && { name: opts.name }), ...(maxTenants && { maxTenants }) }, { type: 'cli' });
          print(added, (s) => `registered ${s.name} (${s.region}, ${s.address}, up to ${s.maxTenants} tenants)`);
          for (const w of added.warnings) say(`warning: ${w}`);
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  server
    .command('list')
    .description('list the registered database servers with their load')
    .action(() =>
      run(['fleet'], async ({ modules, print }) => {
        print(await modules.fleet.servers.list(), table);
      }),
    );
}
