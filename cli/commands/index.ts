// Every command that talks to the API (cli/main.ts adds the service commands itself).
import type { Command } from 'commander';
import { addExecCommands } from './exec';
import { addFileCommands } from './files';
import { addJobCommands } from './job';
import { addOperatorCommands } from './operator';
import { addSandboxLifecycleCommands } from './sandbox';
import { addSessionCommands } from './session';

export function addApiCommands(program: Command): void {
  const sandbox = program
    .command('sandbox')
    .description('create, inspect, exec into, copy files to and from, renew and destroy sandboxes');
  addSandboxLifecycleCommands(sandbox);
  addExecCommands(sandbox);
  addFileCommands(sandbox);
  addSessionCommands(program);
  addJobCommands(program);
  addOperatorCommands(program);
}
