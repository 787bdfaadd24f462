// The worker's drivers, measured: every failed call counts by driver and operation, destroys and
// execs are timed, and each exec counts by outcome. Wrapped once in worker/worker.ts, so every path
// to a driver (sandbox workflows, the reaper, force-destroy, tests' harness) is measured alike.
import { HypervisorSet } from '../hypervisors/index';
import type { ExecResult, Hypervisor, OpContext } from '../hypervisors/types';
import { destroySeconds, driverErrorsTotal, execSeconds, execsTotal } from './definitions';

export function instrumentHypervisors(set: HypervisorSet): HypervisorSet {
  const drivers = new Map(set.names.map((name) => [name, instrumentHypervisor(name, set.get(name))]));
  return new HypervisorSet(drivers, set.defaultDriver);
}

export type ExecOutcome = 'ok' | 'nonzero' | 'timeout' | 'error';

export function execOutcome(result: ExecResult | undefined): ExecOutcome {
  if (!result) return 'error';
  if (result.timedOut) return 'timeout';
  return result.exitCode === 0 ? 'ok' : 'nonzero';
}

/** `driver` is the name the worker knows the driver by (the label every other metric uses). */
export function instrumentHypervisor(driver: string, inner: Hypervisor): Hypervisor {
  /** Runs one driver call; a failure counts unless the caller had cancelled it (that is no driver fault). */
  async function call<T>(operation: string, ctx: OpContext | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (!ctx?.signal?.aborted) driverErrorsTotal.inc({ driver, operation });
      throw err;
    }
  }
  const since = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9;
  async function timedExec(ctx: OpContext | undefined, run: () => Promise<ExecResult>): Promise<ExecResult> {
    const start = process.hrtime.bigint();
    let result: ExecResult | undefined;
    try {
      result = await call('exec', ctx, run);
      return result;
    } finally {
      const outcome = execOutcome(result);
      execsTotal.inc({ driver, outcome });
      execSeconds.observe({ driver, outcome }, since(start));
    }
  }

  return {
    name: inner.name,
    create: (spec, ctx) => call('create', ctx, () => inner.create(spec, ctx)),
    waitReady: (id, timeoutMs, ctx) => call('waitReady', ctx, () => inner.waitReady(id, timeoutMs, ctx)),
    exec: (id, req, ctx) => timedExec(ctx, () => inner.exec(id, req, ctx)),
    // A streamed exec is an exec: the same counters, the same operation name for failures.
    execStream: (id, req, onOutput, ctx) => timedExec(ctx, () => inner.execStream(id, req, onOutput, ctx)),
    fileSystem: inner.fileSystem,
    stop: (id, ctx) => call('stop', ctx, () => inner.stop(id, ctx)),
    start: (id, ctx) => call('start', ctx, () => inner.start(id, ctx)),
    async destroy(id, ctx) {
      const start = process.hrtime.bigint();
      const result = await call('destroy', ctx, () => inner.destroy(id, ctx));
      destroySeconds.observe({ driver }, since(start));
      return result;
    },
    list: () => call('list', undefined, () => inner.list()),
    describe: (id) => call('describe', undefined, () => inner.describe(id)),
    ...(inner.summary ? { summary: () => inner.summary!() } : {}),
    ...(inner.close ? { close: () => inner.close!() } : {}),
  };
}
