// The data plane's exec operations on a sandbox's workflow (streaming, background, kill) and its
// reads of the registry (an exec, a page of its output). The workflow says whether; the registry
// holds the record and the bytes.
import { WorkflowNotFoundError, WorkflowUpdateStage } from '@temporalio/client';
import { DEFAULT_EXEC_TIMEOUT_SECONDS } from '../../hypervisors/guest/contract';
import { readOutput } from '../../registry/exec-output';
import { getExec } from '../../registry/execs';
import { getSandbox } from '../../registry/sandboxes';
import { execUpdate, killExecUpdate, startExecUpdate } from '../../workflows/messages';
import type { ExecInput, ExecOutput } from '../../workflows/types';
import { ApiError, notFound, toApiError } from '../errors';
import type { ExecBody } from '../schemas';
import { authorize } from '../sandboxes/access';
import type { SandboxContext } from '../sandboxes/context';
import { callSandbox, isCompletedError, sandboxHandle } from '../sandboxes/workflow-call';
import type { Principal } from '../tokens';
import { chunkBody } from './follow';

/** An update is accepted (or refused by the workflow's validator) within this long. */
const ACCEPT_MS = 30_000;

/** What the workflow gets: stdin as base64, no transport flags it does not read. */
export function execInputOf(body: ExecBody): ExecInput {
  const { stdin, stdinBase64, stream: _stream, background: _background, ...rest } = body;
  const base64 = stdin !== undefined ? Buffer.from(stdin, 'utf8').toString('base64') : stdinBase64;
  return { ...rest, ...(base64 !== undefined ? { stdinBase64: base64 } : {}) };
}

/**
 * Starts a streaming exec: resolves once the workflow has accepted it (a refusal — wrong state,
 * unknown sandbox — throws here, before any byte of the stream), with its outcome to come.
 */
export async function startStreamingExec(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  input: ExecInput,
  execId: string,
): Promise<{ outcome: Promise<ExecOutput>; abandon: () => void }> {
  await authorize(ctx, p, id);
  const handle = sandboxHandle(ctx.client, id);
  const args: [ExecInput] = [{ ...input, stream: true, execId }];
  const update = await callSandbox(ctx, id, 'exec', () =>
    ctx.client.withDeadline(Date.now() + ACCEPT_MS, () =>
      handle.startUpdate(execUpdate, { args, updateId: `exec:${execId}`, waitForStage: WorkflowUpdateStage.ACCEPTED }),
    ),
  );
  const abort = new AbortController();
  const deadline = Date.now() + ((input.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS) + 60) * 1000;
  const outcome = ctx.client.withAbortSignal(abort.signal, () =>
    ctx.client.withDeadline(deadline, () => update.result()),
  );
  outcome.catch(() => {}); // read by the stream; a client gone first leaves it unread
  return { outcome, abandon: () => abort.abort() };
}

/** A streaming exec's failure as its `error` event: a closed workflow says how the sandbox ended. */
export async function outcomeError(ctx: SandboxContext, id: string, err: unknown): Promise<ApiError> {
  if (err instanceof WorkflowNotFoundError || isCompletedError(err)) {
    const row = await getSandbox(ctx.pool, id).catch(() => null);
    if (row) {
      const why = row.destroyReason ? ` (${row.destroyReason})` : '';
      const message = `the sandbox ended in state ${row.state}${why} while the command ran`;
      return new ApiError(409, 'invalid_state', message, { state: row.state });
    }
  }
  return toApiError(err);
}

export async function startBackgroundExec(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  input: ExecInput,
  execId: string,
): Promise<{ execId: string }> {
  await authorize(ctx, p, id);
  const args: [ExecInput] = [{ ...input, background: true, execId }];
  return callSandbox(ctx, id, 'exec', () =>
    ctx.client.withDeadline(Date.now() + ACCEPT_MS + 30_000, () =>
      sandboxHandle(ctx.client, id).executeUpdate(startExecUpdate, { args, updateId: `exec:${execId}` }),
    ),
  );
}

export async function execRecord(ctx: SandboxContext, p: Principal, id: string, execId: string) {
  await authorize(ctx, p, id);
  const row = await getExec(ctx.pool, id, execId);
  if (!row) throw notFound(`exec ${execId} of sandbox ${id}`);
  return row;
}

const ended = (execId: string, state: string) =>
  new ApiError(
    409,
    'invalid_state',
    `exec ${execId} has already ended (state ${state}); only a running exec can be killed`,
    {
      state,
    },
  );

/** Kills a running exec (its whole process tree); answers its record once it has ended. */
export async function killExec(ctx: SandboxContext, p: Principal, id: string, execId: string) {
  const row = await execRecord(ctx, p, id, execId);
  if (row.state !== 'running') throw ended(execId, row.state);
  // A command recorded but not yet started is waited for by the workflow, not missed.
  const result = await callSandbox(ctx, id, 'exec', () =>
    ctx.client.withDeadline(Date.now() + 60_000, () =>
      sandboxHandle(ctx.client, id).executeUpdate(killExecUpdate, { args: [{ execId }] }),
    ),
  );
  if (!result.killed) {
    const now = await getExec(ctx.pool, id, execId);
    if (!now) throw notFound(`exec ${execId} of sandbox ${id}`);
    if (now.finishedAt) throw ended(execId, now.state);
    return now; // running, and the workflow does not know it
  }
  // The workflow answers once the command has ended; its row may trail it by a write.
  for (let waited = 0; ; waited += 100) {
    const now = await getExec(ctx.pool, id, execId);
    if (!now) throw notFound(`exec ${execId} of sandbox ${id}`);
    if (now.state === 'killed' || (now.finishedAt && waited >= 2000) || waited >= 10_000) return now;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A page of an exec's output; `finished` once the exec has ended and this page holds the last of it. */
export async function outputPage(
  ctx: SandboxContext,
  p: Principal,
  id: string,
  execId: string,
  after: number,
  limit: number,
) {
  const row = await execRecord(ctx, p, id, execId);
  const chunks = await readOutput(ctx.pool, id, execId, after, limit);
  return {
    items: chunks.map((c) => ({ seq: c.seq, stream: c.stream, ...chunkBody(c.data) })),
    nextAfter: chunks.at(-1)?.seq ?? after,
    finished: Boolean(row.finishedAt) && chunks.length < limit,
  };
}
