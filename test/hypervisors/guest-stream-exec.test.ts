// The streamed guest-agent runner (hypervisors/guest/stream-exec.ts) against a scripted agent whose
// command writes faster than it is read: every read comes back full, for ever. The deadline and a
// cancel must still end it, promptly (the drivers' data-plane suites do the same with a real `yes`).
import { setImmediate } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { KILL_TREE } from '../../hypervisors/guest/exec';
import { planExec } from '../../hypervisors/guest/exec-plan';
import { runStreamingInGuest, type StreamingGuestAgent } from '../../hypervisors/guest/stream-exec';
import { VM_GUEST_HOME } from '../../hypervisors/guest/contract';

const CHUNK = 16;
const COMMAND_PID = 100;

/** `exitsAtOnce`: the command has ended but left an endless file (a read never comes back short). */
function floodingAgent(opts: { exitsAtOnce?: boolean } = {}) {
  let killed = false;
  let reads = 0;
  /** The most reads one poll of the runner made (reads between two status requests, or after the kill). */
  let mostReadsPerPoll = 0;
  let readsSinceStatus = 0;
  const kills: string[][] = [];
  const agent: StreamingGuestAgent = {
    pollMs: { first: 1, max: 5 },
    tailMs: { first: 1, max: 5 },
    readChunkBytes: CHUNK,
    exec: async (argv) => {
      if (argv[2] === KILL_TREE) {
        kills.push(argv);
        killed = true;
        readsSinceStatus = 0; // the reads after the kill are a poll of their own
      }
      return 200;
    },
    start: async () => COMMAND_PID,
    status: async (pid) => {
      if (pid !== COMMAND_PID) return { exited: true, exitcode: 0 };
      if (killed) return { exited: true, signal: 9 };
      return opts.exitsAtOnce ? { exited: true, exitcode: 0 } : { exited: false };
    },
    outputs: () => ({
      poll: async (pid) => {
        await setImmediate(); // a real read is I/O: timers get their turn
        if (pid !== null) readsSinceStatus = 0;
        reads++;
        mostReadsPerPoll = Math.max(mostReadsPerPoll, ++readsSinceStatus);
        const status = pid === null ? undefined : await agent.status(pid);
        return { status, chunks: [Buffer.alloc(CHUNK, 'y'), Buffer.alloc(0)] };
      },
      close: async () => {},
    }),
  };
  return { agent, kills, reads: () => reads, mostReadsPerPoll: () => mostReadsPerPoll };
}

describe('the streamed guest-agent runner, with output that never runs dry', () => {
  it('kills the command at its deadline, reading at most a few chunks between status checks', async () => {
    const a = floodingAgent();
    let bytes = 0;
    const plan = planExec('s', { command: ['yes'], timeoutSeconds: 0.3 }, VM_GUEST_HOME);
    const r = await runStreamingInGuest(a.agent, plan, undefined, (_s, c) => void (bytes += c.length));
    expect(r).toMatchObject({ exitCode: 124, timedOut: true });
    expect(r.durationMs).toBeLessThan(1_500);
    expect(a.kills).toEqual([['/bin/sh', '-c', KILL_TREE, String(COMMAND_PID)]]);
    expect(bytes).toBeGreaterThan(0);
    expect(a.mostReadsPerPoll()).toBeLessThanOrEqual(8);
  });

  it('kills the command when the caller cancels, and throws the reason', async () => {
    const a = floodingAgent();
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('cancelled by the test')), 100);
    const started = Date.now();
    const plan = planExec('s', { command: ['yes'], timeoutSeconds: 60 }, VM_GUEST_HOME);
    const run = runStreamingInGuest(a.agent, plan, undefined, () => {}, { signal: abort.signal });
    await expect(run).rejects.toThrow('cancelled by the test');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(a.kills).toHaveLength(1);
  });

  it('stops reading an ended command’s endless output at the deadline (timedOut), killing nothing', async () => {
    const a = floodingAgent({ exitsAtOnce: true });
    const plan = planExec('s', { command: ['yes'], timeoutSeconds: 0.3 }, VM_GUEST_HOME);
    const r = await runStreamingInGuest(a.agent, plan, undefined, () => {});
    expect(r).toMatchObject({ exitCode: 124, timedOut: true });
    expect(r.durationMs).toBeLessThan(1_500);
    expect(a.kills).toEqual([]);
    expect(a.reads()).toBeGreaterThan(8);
  });
});
