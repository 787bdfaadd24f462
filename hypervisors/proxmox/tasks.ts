// How the driver calls PVE: an async call is a task waited on through its UPID, and transient
// failures (locks, flock timeouts, quorum loss, transport) are retried a few times in place.
import { BusyError } from '../errors';
import type { OpContext } from '../types';
import { isTransientPveError, PveTaskTimeoutError, sleep, type PveClient, type PveParams } from './client';

export class PveTasks {
  constructor(
    readonly client: PveClient,
    readonly taskTimeoutMs: number,
    /** Pauses between in-driver retries (then the caller's retry policy takes over). */
    readonly retryDelaysMs: number[],
  ) {}

  /** Starts an async PVE call and waits on its UPID. */
  async run(path: string, params: PveParams, ctx: OpContext, method: 'POST' | 'DELETE' = 'POST'): Promise<void> {
    const upid = await this.client.request<string>(method, path, params, { signal: ctx.signal });
    const result = await this.client.waitTask(upid, {
      timeoutMs: this.taskTimeoutMs,
      signal: ctx.signal,
      onPoll: (ms) => ctx.progress?.(`waiting for ${upid.split(':')[5]} task (${ms} ms)`),
    });
    if (result.warnings > 0) ctx.progress?.(`${upid.split(':')[5]} task finished with ${result.exitstatus}`);
  }

  /** Retries locks, flock timeouts, quorum loss and transport errors a few times, then gives up. */
  async withRetries<T>(ctx: OpContext, what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const delay = this.retryDelaysMs[attempt];
        const transient = isTransientPveError(err) || err instanceof BusyError;
        if (!transient || err instanceof PveTaskTimeoutError || delay === undefined || ctx.signal?.aborted) throw err;
        ctx.progress?.(`${what}: ${err instanceof Error ? err.message : String(err)}; retrying`);
        await sleep(delay, ctx.signal);
      }
    }
  }
}

export function vmPath(vm: { node: string; vmid: number }, rest: string): string {
  return `/nodes/${vm.node}/qemu/${vm.vmid}/${rest}`;
}
