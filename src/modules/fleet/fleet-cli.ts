/** CLI commands of the fleet module. */
import type { Command } from 'commander';
import type { CliRunner } from '../../cli/context.ts';

export function registerServerCommands(_program: Command, _run: CliRunner): void {}
