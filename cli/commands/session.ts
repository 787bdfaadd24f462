// `hourglass session create|get|heartbeat|end`: sandboxes grouped under heartbeats; ending it destroys them.
import type { Command } from 'commander';
import { contextOf } from '../context';
import { formatSession, integer } from '../format';

export function addSessionCommands(program: Command): void {
  const session = program
    .command('session')
    .description('sessions: sandboxes that live while heartbeats come (sandbox create --session <id>)');

  session
    .command('create')
    .requiredOption('--heartbeat-timeout <seconds>', 'the session ends this long after its last heartbeat', integer)
    .action(async (o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const s = await client.createSession({ heartbeatTimeoutSeconds: o.heartbeatTimeout });
      print(s, () => formatSession(s));
    });

  session.command('get <id>').action(async (id: string, _o, cmd: Command) => {
    const { client, print } = contextOf(cmd);
    const s = await client.getSession(id);
    print(s, () => formatSession(s));
  });

  session
    .command('heartbeat <id>')
    .description('push its deadline out by its heartbeat timeout')
    .action(async (id: string, _o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const s = await client.heartbeatSession(id);
      print(s, () => `${s.id}: alive until ${s.deadline}`);
    });

  session
    .command('end <id>')
    .description('end it now: its sandboxes are destroyed')
    .action(async (id: string, _o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const s = await client.endSession(id);
      print(s, () => `${s.id}: ending (${s.sandboxes.length} sandbox(es) destroyed with it)`);
    });
}
