// A worker that dies mid-command (SIGKILL) never leaves an exec open: its heartbeats stop, the
// activity fails within seconds, and the workflow records the exec as interrupted. The API and
// the worker run as separate processes here (sharing only Temporal, PostgreSQL and the codec key),
// and the sandbox outlives its worker: the next worker runs commands in it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { SandboxStatus } from '../workflows/types';
import { TEST_CODEC_KEY, eventually, startHarness, type Harness } from './support/harness';

let h: Harness;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  h = await startHarness({ worker: false });
});
afterAll(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await h?.client.schedule
    .getHandle(`hourglass-reaper-${h.taskQueue}`)
    .delete()
    .catch(() => {});
  await h?.close();
});

/** `hourglass worker` as its own process, on the harness's task queue and state dir. */
function startWorkerProcess(name: string): ChildProcess {
  const log = createWriteStream(path.join(h.stateDir, `${name}.log`));
  const child = spawn(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'worker'], {
    env: {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DATABASE_URL: inject('databaseUrl'),
      HOURGLASS_TASK_QUEUE: h.taskQueue,
      HOURGLASS_STATE_DIR: h.stateDir,
      HOURGLASS_CODEC_KEY: TEST_CODEC_KEY,
      HOURGLASS_DRIVERS: 'process',
      HOURGLASS_REAPER_INTERVAL_SECONDS: '3600',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  workers.push(child);
  return child;
}

describe('a worker lost mid-exec', () => {
  it('records the exec as interrupted, and the sandbox keeps working with the next worker', async () => {
    const first = startWorkerProcess('worker-1');
    const { body: sbx, status } = await h.api<SandboxStatus>('POST', '/v1/sandboxes', {
      ttlSeconds: 300,
      readyTimeoutSeconds: 120,
    });
    expect(status).toBe(201);
    expect(sbx.state).toBe('RUNNING');

    const running = h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['sleep', '120'], timeoutSeconds: 200 });
    const execId = await eventually(async () => {
      const { rows } = await h.pool.query('SELECT exec_id FROM execs WHERE sandbox_id = $1', [sbx.id]);
      return rows[0]?.exec_id as string | undefined;
    }, 30_000);
    first.kill('SIGKILL');
    const killedAt = Date.now();
    startWorkerProcess('worker-2');

    const answer = await running;
    expect(answer.status).toBe(502);
    expect(answer.body.error.message).toMatch(
      /interrupted: the worker running it was lost \(activity Heartbeat timeout\)/,
    );
    const row = await eventually(async () => {
      const { rows } = await h.pool.query('SELECT * FROM execs WHERE sandbox_id = $1 AND exec_id = $2', [
        sbx.id,
        execId,
      ]);
      return rows[0]?.finished_at ? rows[0] : undefined;
    }, 60_000);
    console.log(
      `[worker-loss] exec recorded as interrupted ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the SIGKILL`,
    );
    expect(row.exit_code).toBeNull();
    expect(row.error).toMatch(/^interrupted: .*(heartbeat|timeout)/i);

    const again = await h.api('POST', `/v1/sandboxes/${sbx.id}/exec`, { command: ['echo', 'still here'] });
    expect(again.body).toMatchObject({ exitCode: 0, stdout: 'still here\n' });
    await h.api('DELETE', `/v1/sandboxes/${sbx.id}`);
    await eventually(async () => (await h.api('GET', `/v1/sandboxes/${sbx.id}`)).body.state === 'DESTROYED', 30_000);
  }, 240_000);
});
