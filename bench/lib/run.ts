// The frame of every bench: cleanup on any exit (Ctrl-C included), then the one JSON line —
// bench, params, machine, commit, versions, results — after the tables the bench printed.
import { commit, loadavg, machine, packageVersions } from './environment';
import { log } from './output';
import { abort } from './pool';
import { Stack, type StackOptions } from './stack';

export interface Bench {
  /** Starts a stack that is stopped (and its state dir removed) whatever happens. */
  startStack(opts: Omit<StackOptions, 'name'>): Promise<Stack>;
  /** Runs at the end, last registered first. */
  onCleanup(fn: () => Promise<void> | void): void;
}

export async function runBench(
  name: string,
  params: object,
  body: (b: Bench) => Promise<Record<string, unknown>>,
): Promise<never> {
  const machineInfo = machine();
  const cleanups: (() => Promise<void> | void)[] = [];
  let stack: Stack | undefined;
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch (err) {
          log(`cleanup: ${(err as Error).message}`);
        }
      }
    })());
  let interrupted = false;
  const onSignal = (signal: string) => {
    if (interrupted) return;
    interrupted = true;
    abort.requested = true;
    log(`${signal}: cleaning up (stopping the stack) …`);
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const bench: Bench = {
    async startStack(opts) {
      const s = await Stack.launch({ name, ...opts });
      // Registered before start-up is done: a failed or interrupted start is stopped too.
      cleanups.push(() => s.stop());
      stack = s;
      await s.ready();
      return s;
    },
    onCleanup: (fn) => void cleanups.push(fn),
  };
  try {
    const results = await body(bench);
    // Interrupted: the figures are incomplete, print none; the clean-up is already running.
    if (interrupted) return await cleanup().then(() => process.exit(130));
    const versions = { ...packageVersions(), ...(stack ? await stack.versions() : {}) };
    const line = {
      bench: name,
      params,
      machine: { ...machineInfo, loadavgEnd: loadavg() },
      commit: commit(),
      versions,
      results,
    };
    console.log(JSON.stringify(line));
    await cleanup();
    stack?.removeLog();
    process.exit(0);
  } catch (err) {
    if (interrupted) return await cleanup().then(() => process.exit(130));
    log(`failed: ${(err as Error).stack ?? err}`);
    if (stack) log(`service output (last lines; all of it in ${stack.logFile}):\n${stack.output().slice(-3000)}`);
    await cleanup();
    process.exit(1);
  }
}
