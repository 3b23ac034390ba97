/** CLI commands of the accounts module: `havre operator create|list`. */
import { Option, type Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import type { StaffRole } from './accounts-tables.ts';
import { badRequest } from '../../lib/errors.ts';

export function registerOperatorCommands(program: Command, run: CliRunner): void {
  const operator = program.command('operator').description('operator staff accounts (admin, support, billing); their sign-in needs TOTP');

  operator
    .command('create')
    .description('create a staff account and print its random password once')
    .requiredOption('--email <email>', 'e-mail address (the sign-in name)')
    .requiredOption('--name <name>', 'full name')
    .addOption(new Option('--role <role>', 'staff role').choices(['admin', 'support', 'billing']).makeOptionMandatory())
    .action((opts: { email: string; name: string; role: StaffRole }) =>
      run(['accounts'], async ({ modules, print }) => {
        // Imported here: the schemas bring the password hashing library, which no other command needs.
        const { staffBody } = await import('./accounts-schemas.ts');
        const parsed = staffBody.safeParse(opts);
        if (!parsed.success) throw badRequest('invalid_input', parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('; '));
        const { user, password } = await modules.accounts.service.createOperator(parsed.data);
        print({ email: user.email, role: user.staffRole, password }, (r) =>
          [`operator ${r.email} (${r.role}) created.`, `password (shown once, change it after the first sign-in): ${r.password}`, 'At first sign-in, two-factor authentication (TOTP) must be set up.'].join('\n'),
        );
      }),
    );

  operator
    .command('list')
    .description('list staff accounts')
    .action(() =>
      run(['accounts'], async ({ modules, print }) => {
        const staff = await modules.accounts.service.listStaff();
        print(staff, (list) => (list.length ? list.map((u) => `${u.email}\t${u.staffRole}\t${u.name}\t${u.totpEnabled ? 'totp' : 'no totp yet'}`).join('\n') : 'no staff accounts'));
      }),
    );
}
