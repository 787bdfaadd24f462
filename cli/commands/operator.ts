// `hourglass prune` and `hourglass destroy-all`: operations on many sandboxes at once.
import type { Command } from 'commander';
import { contextOf } from '../context';
import { integer, shown } from '../format';

export function addOperatorCommands(program: Command): void {
  program
    .command('prune')
    .description('run the reaper now: fix every drift between hypervisors, registry and Temporal')
    .option('--dry-run', 'report what would be done, change nothing')
    .option('--older-than <seconds>', 'only sandboxes older than this', integer)
    .action(async (o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const report = await client.prune({ dryRun: Boolean(o.dryRun), olderThanSeconds: o.olderThan });
      print(report, () =>
        [
          ...report.items.map((i) => `${i.id}  ${i.drift.padEnd(20)} ${i.action}`),
          `${report.count} drift(s)${report.dryRun ? ' (dry run: nothing changed)' : ' fixed'}`,
        ].join('\n'),
      );
    });

  program
    .command('destroy-all')
    .description('destroy every sandbox with a label (bulk destroy)')
    .requiredOption('--label <k=v>', 'label filter')
    .option('--force', 'force-destroy')
    .action(async (o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const result = await client.bulkDestroy({ label: o.label, force: Boolean(o.force) });
      print(result, () =>
        [
          ...result.items.map((i) => `${i.id}  ${i.ok ? 'ok' : `FAILED: ${shown(i.error.message)}`}`),
          `${result.count} sandbox(es), ${result.failed} failed`,
        ].join('\n'),
      );
      if (result.failed) process.exitCode = 1;
    });
}
