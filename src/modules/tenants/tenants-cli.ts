/** CLI commands of the tenants module. */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';

export function registerTenantCommands(_program: Command, _run: CliRunner): void {}
