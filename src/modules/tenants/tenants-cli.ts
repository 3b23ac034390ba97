/** CLI commands of the tenants module: `havre tenant list|show|create|suspend|resume` (acting as `cli`). */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';
import { badRequest } from '../../lib/errors.ts';
import { isTenantState, TENANT_STATES } from './tenant-states.ts';
import { presentAdminTenant, presentAdminTransition, tenantDetails, tenantTable } from './tenants-presenters.ts';
import type { TenantActor } from './tenants-service.ts';

const CLI: TenantActor = { type: 'cli' };

export function registerTenantCommands(program: Command, run: CliRunner): void {
  const tenant = program.command('tenant').description('tenants: one dedicated database per customer workspace, and their lifecycle (TEN-3)');

  tenant
    .command('list')
    .description('list tenants')
    .option('--customer <id>', 'only the tenants of this customer')
    .option('--state <state>', `only tenants in this state (${TENANT_STATES.join(', ')})`)
    .option('--region <code>', 'only tenants of this region')
    .action((opts: { customer?: string; state?: string; region?: string }) =>
      run(['tenants'], async ({ modules, print }) => {
        if (opts.state !== undefined && !isTenantState(opts.state)) throw badRequest('invalid_state', `--state takes one of: ${TENANT_STATES.join(', ')}`);
        const list = await modules.tenants.service.list({
          ...(opts.customer && { customerId: opts.customer }),
          ...(opts.state && isTenantState(opts.state) && { state: opts.state }),
          ...(opts.region && { region: opts.region }),
        });
        print(list.map(presentAdminTenant), tenantTable);
      }),
    );

  tenant
    .command('show')
    .description('show a tenant and its lifecycle history')
    .argument('<id>', 'tenant id')
    .action((id: string) =>
      run(['tenants'], async ({ modules, print }) => {
        const t = await modules.tenants.service.get(id);
        const transitions = (await modules.tenants.service.transitions(t.id)).map(presentAdminTransition);
        print({ ...presentAdminTenant(t), transitions }, ({ transitions: history, ...view }) => tenantDetails(view, history));
      }),
    );

  tenant
    .command('create')
    .description('create a tenant for an existing customer: a dedicated database in the region, starting its trial')
    .requiredOption('--customer <id>', 'customer id')
    .requiredOption('--name <name>', 'tenant name')
    .option('--region <code>', 'region of its database server (default: the configured default region)')
    .action((opts: { customer: string; name: string; region?: string }) =>
      run(['tenants', 'fleet'], async ({ modules, print }) => {
        try {
          const { tenant: t } = await modules.tenants.service.create({ customerId: opts.customer, name: opts.name, ...(opts.region && { region: opts.region }), actor: CLI });
          print(presentAdminTenant(t), (v) => `created tenant ${v.id} "${v.name}" in ${v.region} on ${v.server ?? '-'} (${v.state}, trial ends ${v.trialEndsAt ?? '-'})`);
        } finally {
          await modules.fleet.connections.closeAll();
        }
      }),
    );

  tenant
    .command('suspend')
    .description('suspend a tenant in trial or active')
    .argument('<id>', 'tenant id')
    .requiredOption('--reason <text>', 'why (recorded in the history and the audit log)')
    .action((id: string, opts: { reason: string }) =>
      run(['tenants'], async ({ modules, print }) => {
        const t = await modules.tenants.service.suspend(id, { actor: CLI, reason: opts.reason });
        print(presentAdminTenant(t), (v) => `tenant ${v.id} is now ${v.state}`);
      }),
    );

  tenant
    .command('resume')
    .description('resume a suspended tenant (or reactivate a cancelled one): back to trial if its trial is still running, else active')
    .argument('<id>', 'tenant id')
    .option('--reason <text>', 'why (recorded in the history and the audit log)')
    .action((id: string, opts: { reason?: string }) =>
      run(['tenants'], async ({ modules, print }) => {
        const t = await modules.tenants.service.resume(id, { actor: CLI, reason: opts.reason ?? null });
        print(presentAdminTenant(t), (v) => `tenant ${v.id} is now ${v.state}`);
      }),
    );
}
