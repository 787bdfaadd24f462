// Sandbox steps as a client does them, through the REST API only.
import { Failures, type ApiClient } from './api';
import { log } from './output';
import type { StateWatcher } from './registry';
import { sleep } from './stack';

/** How long a create refused for load is retried (or one not yet RUNNING polled) before it counts as failed. */
const MAX_RETRYING_MS = 600_000;

export interface Created {
  id: string;
  /** create → RUNNING as the caller sees it: the POST (which waits), plus polling if it returned earlier. */
  ms: number;
  expiresAt?: string;
}

/**
 * POST /v1/sandboxes; it waits until RUNNING by default. Should it return before (its own wait
 * ran out), GET is polled until RUNNING. A create refused for load (429 with Retry-After) is
 * tried again after the wait asked for, as a well-behaved client would: the time counts, and each
 * refusal is counted as "(retried)". Failures are counted under `step` and return undefined.
 */
export async function createRunning(
  api: ApiClient,
  body: Record<string, unknown>,
  failures: Failures,
  step = 'create',
): Promise<Created | undefined> {
  const started = performance.now();
  let res;
  for (;;) {
    try {
      res = await api.post('/v1/sandboxes', body);
    } catch (err) {
      failures.add(step, err as Error);
      return undefined;
    }
    if (res.status !== 429 || res.retryAfter === undefined || performance.now() - started > MAX_RETRYING_MS) break;
    failures.add(`${step} (retried)`, res);
    await sleep(res.retryAfter * 1000);
  }
  if (res.status !== 201 && res.status !== 200) {
    failures.add(step, res);
    return undefined;
  }
  type Sandbox = { id: string; state: string; expiresAt?: string };
  let sandbox = res.body as Sandbox;
  while (
    ['REQUESTED', 'PROVISIONING', 'BOOTING'].includes(sandbox.state) &&
    performance.now() - started < MAX_RETRYING_MS
  ) {
    await sleep(20);
    const got = await api.get<Sandbox>(`/v1/sandboxes/${sandbox.id}`).catch(() => undefined);
    if (got?.status === 200) sandbox = got.body;
  }
  if (sandbox.state !== 'RUNNING') {
    failures.add(step, { ...res, body: { error: { code: `state ${sandbox.state}` }, sandbox } });
    return undefined;
  }
  return { id: sandbox.id, ms: performance.now() - started, expiresAt: sandbox.expiresAt };
}

/** DELETE (202: the workflow destroys it), then wait until the registry says DESTROYED. */
export async function destroyAndWait(
  api: ApiClient,
  watcher: StateWatcher,
  id: string,
  failures: Failures,
  timeoutMs = 300_000,
): Promise<{ deleteMs: number; destroyedMs: number } | undefined> {
  const startedAt = Date.now();
  let res;
  try {
    res = await api.delete(`/v1/sandboxes/${id}`);
  } catch (err) {
    failures.add('delete', err as Error);
    return undefined;
  }
  if (res.status !== 202) {
    failures.add('delete', res);
    return undefined;
  }
  try {
    const seenAt = await watcher.waitFor(id, 'DESTROYED', timeoutMs);
    return { deleteMs: res.ms, destroyedMs: seenAt - startedAt };
  } catch (err) {
    failures.add('destroyed', err as Error);
    return undefined;
  }
}

/**
 * One whole lifecycle before measuring: the service bundles its workflows and warms its caches
 * on first use, which no figure should include.
 */
export async function warmUp(api: ApiClient, watcher: StateWatcher): Promise<void> {
  const failures = new Failures();
  const started = performance.now();
  const created = await createRunning(api, { ttlSeconds: 300, labels: { bench: 'warmup' } }, failures);
  if (!created) throw new Error(`warm-up create failed: ${JSON.stringify(failures.examples)}`);
  await api.post(`/v1/sandboxes/${created.id}/exec`, { command: ['true'] });
  await destroyAndWait(api, watcher, created.id, failures);
  if (failures.hard) throw new Error(`warm-up failed: ${JSON.stringify(failures.examples)}`);
  log(`warm-up lifecycle took ${Math.round(performance.now() - started)} ms`);
}
