// `hourglass job create|get`: a sandbox that runs commands in order, then is destroyed (unless --keepalive).
import type { Command } from 'commander';
import type { Job } from '../../client/index';
import { contextOf } from '../context';
import { collectLabels, formatJob, integer } from '../format';

const DONE = new Set<Job['state']>(['COMPLETED', 'FAILED', 'TIMEOUT']);

export function addJobCommands(program: Command): void {
  const job = program.command('job').description('run commands in a fresh sandbox, one after another');

  job
    .command('create <commands...>')
    .description('start a job: each argument is one shell command line (run with sh -c), in order')
    .requiredOption('--ttl <seconds>', 'lease of its sandbox', integer)
    .option('--driver <name>', 'hypervisor driver')
    .option('--template <name>', 'template/image')
    .option('--command-timeout <seconds>', 'timeout of each command', integer)
    .option('--keepalive', 'keep the sandbox until its lease ends instead of destroying it when done')
    .option('--label <k=v...>', 'labels', collectLabels, {})
    .option('--idempotency-key <key>', 'same key → same job')
    .option('--wait', 'wait until it has finished (exits 0 only when COMPLETED)')
    .action(async (commands: string[], o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      let j = await client.createJob(
        {
          commands: commands.map((line) => ['sh', '-c', line]),
          ttlSeconds: o.ttl,
          driver: o.driver,
          template: o.template,
          commandTimeoutSeconds: o.commandTimeout,
          keepalive: Boolean(o.keepalive),
          labels: o.label,
        },
        { idempotencyKey: o.idempotencyKey },
      );
      if (o.wait) j = await untilDone(() => client.getJob(j.id));
      print(j, () => formatJob(j));
      if (o.wait && j.state !== 'COMPLETED') process.exitCode = 1;
    });

  job
    .command('get <id>')
    .description("a job's state and each step's result")
    .option('--wait', 'wait until it has finished (exits 0 only when COMPLETED)')
    .action(async (id: string, o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const j = o.wait ? await untilDone(() => client.getJob(id)) : await client.getJob(id);
      print(j, () => formatJob(j));
      if (o.wait && j.state !== 'COMPLETED') process.exitCode = 1;
    });
}

/** Polls (a job has no stream of its own); 1 s apart is plenty for commands that take seconds. */
async function untilDone(get: () => Promise<Job>): Promise<Job> {
  for (;;) {
    const j = await get();
    if (DONE.has(j.state)) return j;
    await new Promise((r) => setTimeout(r, 1000));
  }
}
