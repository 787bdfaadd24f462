// `hourglass sandbox create|list|get|events|renew|stop|start|destroy`.
import type { Command } from 'commander';
import { contextOf } from '../context';
import { collectLabels, formatSandbox, integer, shown } from '../format';

export function addSandboxLifecycleCommands(sandbox: Command): void {
  sandbox
    .command('create')
    .description('create a sandbox and wait until it is RUNNING')
    .requiredOption('--ttl <seconds>', 'lease length in seconds', integer)
    .option('--driver <name>', 'hypervisor driver (default: the server default)')
    .option('--template <name>', 'template/image')
    .option('--max-lifetime <seconds>', 'hard cap on renewals, in seconds', integer)
    .option('--label <k=v...>', 'labels', collectLabels, {})
    .option('--memory <MiB>', 'memory limit', integer)
    .option('--cpus <n>', 'CPU limit (cores; whole vCPUs on VMs)', Number)
    .option('--pids <n>', 'process limit (process sandboxes)', integer)
    .option('--tmp <MiB>', 'size of /tmp (process sandboxes)', integer)
    .option('--disk <MiB>', 'size of the workspace (process sandboxes)', integer)
    .option('--session <id>', 'join this session (ended with it)')
    .option('--idempotency-key <key>', 'same key → same sandbox')
    .option('--no-wait', 'return at once instead of waiting for RUNNING')
    .action(async (o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const limits = { memoryMiB: o.memory, cpus: o.cpus, pids: o.pids, tmpMiB: o.tmp, diskMiB: o.disk };
      const s = await client.createSandbox(
        {
          ttlSeconds: o.ttl,
          driver: o.driver,
          template: o.template,
          maxLifetimeSeconds: o.maxLifetime,
          labels: o.label,
          limits: Object.values(limits).some((v) => v !== undefined) ? limits : undefined,
          sessionId: o.session,
          wait: o.wait,
        },
        { idempotencyKey: o.idempotencyKey },
      );
      print(s, () => formatSandbox(s));
    });

  sandbox
    .command('list')
    .option('--state <states>', 'comma-separated states')
    .option('--label <k=v>', 'label filter')
    .option('--session <id>', "one session's sandboxes")
    .option('--owner <owner>', "one owner's sandboxes (admins; others always see their own)")
    .option('--limit <n>', 'page size', integer, 50)
    .option('--cursor <cursor>', 'next page')
    .action(async (o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const page = await client.listSandboxes({
        state: o.state,
        label: o.label,
        sessionId: o.session,
        owner: o.owner,
        limit: o.limit,
        cursor: o.cursor,
      });
      print(page, () =>
        [
          ...page.items.map((s) => {
            const columns = `${s.id}  ${s.state.padEnd(12)} ${s.driver.padEnd(8)} ${s.owner.padEnd(12)}`;
            return `${columns} expires ${s.expiresAt ?? '-'}`;
          }),
          page.nextCursor ? `… more: --cursor ${page.nextCursor}` : `${page.items.length} sandbox(es)`,
        ].join('\n'),
      );
    });

  sandbox.command('get <id>').action(async (id: string, _o, cmd: Command) => {
    const { client, print } = contextOf(cmd);
    const s = await client.getSandbox(id);
    print(s, () => formatSandbox(s));
  });

  sandbox
    .command('events <id>')
    .description('its state transitions, oldest first')
    .action(async (id: string, _o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const events = await client.sandboxEvents(id);
      print(events, () =>
        events.items
          .map((e) => `${e.at}  ${(e.from ?? '-').padEnd(12)} → ${e.to.padEnd(12)} ${shown(e.reason)}`)
          .join('\n'),
      );
    });

  sandbox
    .command('renew <id>')
    .requiredOption('--ttl <seconds>', 'new lease length from now', integer)
    .option('--signal', 'renew by signal (no answer, works without a worker)')
    .action(async (id: string, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      if (o.signal) {
        const accepted = await client.renewLeaseBySignal(id, o.ttl);
        return print(accepted, () => 'renewal signal sent');
      }
      const renewed = await client.renewLease(id, o.ttl);
      print(renewed, () => `lease renewed until ${renewed.expiresAt}${renewed.capped ? ' (capped)' : ''}`);
    });

  sandbox.command('stop <id>').action(async (id: string, _o, cmd: Command) => {
    const { client, print } = contextOf(cmd);
    const s = await client.stopSandbox(id);
    print(s, () => formatSandbox(s));
  });

  sandbox.command('start <id>').action(async (id: string, _o, cmd: Command) => {
    const { client, print } = contextOf(cmd);
    const s = await client.startSandbox(id);
    print(s, () => formatSandbox(s));
  });

  sandbox
    .command('destroy <id>')
    .option('--force', 'terminate the workflow and destroy directly, from any state')
    .option('--reason <text>', 'recorded in the event log')
    .action(async (id: string, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const result = await client.destroySandbox(id, { force: Boolean(o.force), reason: o.reason });
      print(result, () => (o.force ? `${id} DESTROYED (force)` : `${id}: destroy requested (was ${result.state})`));
    });
}
