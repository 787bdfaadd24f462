// The `hourglass` command: run the service (dev / worker / api) or talk to its API.
import { Runtime } from '@temporalio/worker';
import { Command } from 'commander';
import { loadConfig } from '../worker/config';
import { startRuntime, type RuntimeOptions } from '../worker/runtime';
import { CliError } from './api-client';
import { addOperatorCommands, addSandboxCommands } from './sandbox-commands';

const program = new Command('hourglass')
  .description('Hourglass: every sandbox is one Temporal workflow, destroyed on time')
  .option('--url <url>', 'API base URL', process.env.HOURGLASS_URL ?? `http://localhost:${process.env.PORT ?? 8080}`)
  .option('--token <token>', 'API bearer token', process.env.HOURGLASS_API_TOKEN)
  .option('--json', 'print raw JSON');

async function serve(opts: RuntimeOptions): Promise<void> {
  // The SDK would shut workers down on SIGINT/SIGTERM by itself; the runtime stops everything in order.
  Runtime.install({ shutdownSignals: [] });
  const runtime = await startRuntime(loadConfig(), opts);
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`[hourglass] ${signal}: shutting down (in-flight activities get 30 s) …`);
    await runtime.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

program
  .command('dev')
  .description('all in one: worker + API, with embedded Temporal and PostgreSQL unless configured')
  .action(() => serve({ worker: true, api: true }));
program.command('worker').description('run a worker only').action(() => serve({ worker: true, api: false }));
program.command('api').description('run the REST API only').action(() => serve({ worker: false, api: true }));
addSandboxCommands(program);
addOperatorCommands(program);

program.parseAsync().catch((err: unknown) => {
  const json = program.opts().json;
  if (err instanceof CliError) {
    console.error(json && err.body ? JSON.stringify(err.body, null, 2) : `error: ${err.message}`);
  } else {
    console.error(`error: ${(err as Error).message ?? err}`);
  }
  process.exit(1);
});
