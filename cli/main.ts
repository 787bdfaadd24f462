// The `hourglass` command: run the service (dev / worker / api) or talk to its API.
import { Command } from 'commander';
import type { Runtime as HourglassRuntime, RuntimeOptions } from '../worker/runtime';
import { addApiCommands } from './commands/index';
import { reportError } from './report-error';

const program = new Command('hourglass')
  .description('Hourglass: every sandbox is one Temporal workflow, destroyed on time')
  .option('--url <url>', 'API base URL', process.env.HOURGLASS_URL ?? `http://localhost:${process.env.PORT ?? 8080}`)
  .option(
    '--token <token>',
    'API bearer token (HOURGLASS_TOKEN)',
    process.env.HOURGLASS_TOKEN ?? process.env.HOURGLASS_API_TOKEN,
  )
  .option('--json', 'print raw JSON');

async function serve(opts: RuntimeOptions): Promise<void> {
  // Loaded here, not at the top: the API commands (sandbox, job …) need none of the service, and
  // loading it took seconds before each of them.
  const [{ Runtime }, { loadConfig }, { componentLogger }, { sdkPrometheusExporter }] = await Promise.all([
    import('@temporalio/worker'),
    import('../config/service'),
    import('../log/logger'),
    import('../metrics/sdk-metrics'),
  ]);
  const [{ closeInheritedFds }, { SdkLogger }, { startRuntime }] = await Promise.all([
    import('../worker/inherited-fds'),
    import('../worker/sdk-logger'),
    import('../worker/runtime'),
  ]);
  // The service's messages are log lines (JSON unless on a terminal); the CLI's answers stay plain.
  const log = componentLogger('runtime');
  // Only fds 0–2 may reach sandboxes: drop what this process inherited before it spawns anything.
  const closed = closeInheritedFds();
  if (closed.length) {
    log.info(`closed inherited file descriptors ${closed.join(', ')} (only 0–2 reach sandboxes)`);
  }
  const config = loadConfig(); // first: a bad setting stops start-up before anything runs
  // The SDK's own Prometheus metrics, where this process serves /metrics (a worker's port, or the API
  // beside a worker): on a loopback port of their own, appended to each scrape (metrics/sdk-metrics.ts).
  const sdkMetrics = opts.worker && (opts.api || config.metricsPort) ? await sdkPrometheusExporter() : undefined;
  // The SDK would shut workers down on SIGINT/SIGTERM by itself; the runtime stops everything in order.
  // Its log (the core's too, forwarded) goes through the process logger: one format, sandboxId on its lines.
  Runtime.install({
    shutdownSignals: [],
    logger: new SdkLogger(),
    telemetryOptions: { metrics: sdkMetrics, logging: { forward: {} } },
  });
  // Handled from the start (the embedded services are in their own process groups, so a terminal's
  // Ctrl-C reaches only this process): a signal during start-up stops everything once it is up.
  // A signal during start-up reads it before it is set: as a const it would throw (not yet initialized).
  // eslint-disable-next-line prefer-const
  let runtime: HourglassRuntime | undefined;
  let requested: string | undefined;
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (!runtime) {
      if (!requested) log.info(`${signal}: shutting down as soon as start-up is done …`);
      requested ??= signal;
      return;
    }
    if (stopping) return;
    stopping = true;
    log.info(`${signal}: shutting down (in-flight activities get 30 s) …`);
    await runtime.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  runtime = await startRuntime(config, opts);
  if (requested) await shutdown(requested);
}

program
  .command('dev')
  .description('all in one: worker + API, with embedded Temporal and PostgreSQL unless configured')
  .action(() => serve({ worker: true, api: true }));
program
  .command('worker')
  .description('run a worker only')
  .action(() => serve({ worker: true, api: false }));
program
  .command('api')
  .description('run the REST API only')
  .action(() => serve({ worker: false, api: true }));
addApiCommands(program);
program
  .command('mcp')
  .description('an MCP server on stdio for agents; its sandboxes are destroyed when the MCP client disconnects')
  .option('--session-timeout <seconds>', 'should this process die: its sandboxes end this long after', Number, 60)
  .action(async (o: { sessionTimeout: number }, cmd: Command) => {
    const { url, token } = cmd.optsWithGlobals<{ url: string; token?: string }>();
    // Loaded on demand: the other commands need none of the MCP SDK.
    const { runMcpServer } = await import('../mcp/main');
    await runMcpServer({ url, token, sessionTimeoutSeconds: o.sessionTimeout });
  });

program.parseAsync().catch((err: unknown) => {
  reportError(err, Boolean(program.opts().json));
  process.exit(1);
});
