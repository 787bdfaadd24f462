// The guest-agent runner (hypervisors/guest/exec.ts) against a scripted agent: the paths a real
// guest rarely takes (a cancelled exec, an agent that cut the output, a kill whose result never comes).
import { describe, expect, it } from 'vitest';
import { GUEST_PATH, truncationMarker, VM_GUEST_HOME } from '../../hypervisors/guest/contract';
import { KILL_TREE, runInGuest, type GuestAgent, type GuestExecStatus } from '../../hypervisors/guest/exec';
import { planExec } from '../../hypervisors/guest/exec-plan';

/** An agent whose command runs until killed (or for ever, if the kill is lost); records every call. */
function scriptedAgent(opts: { exitAfterPolls?: number; final?: GuestExecStatus; killWorks?: boolean } = {}) {
  const calls: { argv: string[]; env?: Record<string, string> }[] = [];
  let polls = 0;
  let killed = false;
  const agent: GuestAgent = {
    pollMs: { first: 1, max: 5 },
    exec: async (argv, env) => {
      calls.push({ argv, env });
      if (argv[2] === KILL_TREE) killed = opts.killWorks ?? true;
      return calls.length === 1 ? 100 : 200;
    },
    status: async (pid) => {
      if (pid !== 100) return { exited: true, exitcode: 0 };
      polls++;
      if (killed) return { exited: true, signal: 9, stdout: Buffer.from('partial\n') };
      const done = opts.exitAfterPolls !== undefined && polls >= opts.exitAfterPolls;
      return done ? (opts.final ?? { exited: true, exitcode: 0 }) : { exited: false };
    },
  };
  return { agent, calls };
}

describe('the guest-agent runner', () => {
  it('starts the launch script with the whole environment, and shapes the result', async () => {
    const out = { stdout: Buffer.from('out'), stderr: Buffer.from('err'), stdoutTruncated: true };
    const { agent, calls } = scriptedAgent({ exitAfterPolls: 3, final: { exited: true, signal: 15, ...out } });
    const plan = planExec('s', { command: ['echo', 'hi'], env: { A: '1' } }, VM_GUEST_HOME);
    const r = await runInGuest(agent, plan);
    expect(calls[0]).toEqual({
      argv: ['/bin/sh', '-c', expect.any(String), 'hourglass-exec', 'echo', 'hi'],
      env: { PATH: GUEST_PATH, HOME: VM_GUEST_HOME, A: '1' },
    });
    // The agent cut stdout at its own cap: the caller still sees the contract's marker.
    expect(r).toMatchObject({ exitCode: 143, stdout: `out${truncationMarker(0)}`, stderr: 'err', timedOut: false });
  });

  it('kills the tree at the deadline and returns what the command printed', async () => {
    const { agent, calls } = scriptedAgent();
    const r = await runInGuest(agent, planExec('s', { command: ['sleep', '9'], timeoutSeconds: 0.05 }, VM_GUEST_HOME));
    expect(calls[1]?.argv).toEqual(['/bin/sh', '-c', KILL_TREE, '100']);
    expect(r).toMatchObject({ exitCode: 124, timedOut: true, stdout: 'partial\n' });
  });

  it('answers 124 with no output when the killed command never reports back', async () => {
    const { agent } = scriptedAgent({ killWorks: false });
    const r = await runInGuest(agent, planExec('s', { command: ['sleep', '9'], timeoutSeconds: 0.05 }, VM_GUEST_HOME));
    expect(r).toMatchObject({ exitCode: 124, timedOut: true, stdout: '', stderr: '' });
    expect(r.durationMs).toBeGreaterThanOrEqual(2_000); // the wait for its last status
  });

  it('kills the tree when the caller cancels, then throws the reason', async () => {
    const { agent, calls } = scriptedAgent();
    const abort = new AbortController();
    setTimeout(() => abort.abort(new Error('activity cancelled')), 30);
    const run = runInGuest(agent, planExec('s', { command: ['sleep', '9'] }, VM_GUEST_HOME), { signal: abort.signal });
    await expect(run).rejects.toThrow('activity cancelled');
    expect(calls[1]?.argv).toEqual(['/bin/sh', '-c', KILL_TREE, '100']);
  });

  it('refuses what no driver can run: no command, bad env names, a timeout that is not positive', () => {
    expect(() => planExec('s', { command: [] }, '/')).toThrow('sandbox s: exec needs a command');
    expect(() => planExec('s', { command: ['true'], env: { 'A B': 'x' } }, '/')).toThrow(/env names must match/);
    expect(() => planExec('s', { command: ['true'], timeoutSeconds: 0 }, '/')).toThrow(/must be positive/);
  });
});
