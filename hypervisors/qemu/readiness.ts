// Is a qemu sandbox's guest up? It is once its agent syncs and runs a command.
import { setTimeout as sleep } from 'node:timers/promises';
import { VM_GUEST_HOME } from '../guest/contract';
import { runInGuest } from '../guest/exec';
import { planExec } from '../guest/exec-plan';
import { isAlive } from '../common/proc-identity';
import { QgaClient, qgaGuestAgent } from './qga';
import type { AgentPool } from './agent-pool';
import { readRecord, type SandboxPaths } from './state';

export type BootOutcome = 'ready' | 'exited' | 'timeout' | 'aborted';

/** 'ready' once the agent syncs and runs a command; 'exited' as soon as QEMU is gone. */
export async function waitForAgent(
  id: string,
  p: SandboxPaths,
  agents: AgentPool,
  deadline: number,
  signal?: AbortSignal,
): Promise<BootOutcome> {
  for (;;) {
    if (signal?.aborted) return 'aborted';
    const fresh = await readRecord(p);
    if (!fresh?.process || !(await isAlive(fresh.process))) return 'exited';
    const left = deadline - Date.now();
    if (left <= 0) return 'timeout';
    const attemptMs = Math.min(1_000, left);
    try {
      await agentAnswers(id, p, agents, attemptMs, signal);
      return 'ready';
    } catch {
      await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
    }
  }
}

/** One readiness attempt: the agent syncs and runs a command. Uses the shared connection if there is one. */
async function agentAnswers(
  id: string,
  p: SandboxPaths,
  agents: AgentPool,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  if (agents.has(id)) {
    // A second connection would only queue behind the open one.
    await agents.use(id, (agent) => runTrue(id, agent, timeoutMs));
    return;
  }
  let client: QgaClient | undefined = await QgaClient.connect(p.agent, { timeoutMs });
  try {
    await client.sync({ timeoutMs, signal });
    await runTrue(id, client, timeoutMs);
    agents.adopt(id, client); // the first exec needs no reconnect
    client = undefined;
  } finally {
    client?.close();
  }
}

async function runTrue(id: string, agent: QgaClient, timeoutMs: number): Promise<void> {
  const plan = planExec(id, { command: ['true'], timeoutSeconds: timeoutMs / 1000 }, VM_GUEST_HOME);
  await runInGuest(qgaGuestAgent(agent), plan);
}

/** The outcome, or 'timeout' at the deadline, or 'aborted' when the signal fires first. */
export async function raceDeadline(
  outcome: Promise<BootOutcome>,
  deadline: number,
  signal?: AbortSignal,
): Promise<BootOutcome> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      outcome,
      new Promise<BootOutcome>((r) => (timer = setTimeout(() => r('timeout'), Math.max(0, deadline - Date.now())))),
      new Promise<BootOutcome>((r) => {
        onAbort = () => r('aborted');
        if (signal?.aborted) onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}
