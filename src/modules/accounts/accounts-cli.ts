/** CLI commands of the accounts module. */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';

export function registerOperatorCommands(_program: Command, _run: CliRunner): void {}
