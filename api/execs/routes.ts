// /v1/sandboxes/:id/exec and /:id/execs/:execId…: a command waited for, streamed (Server-Sent
// Events) or run in the background; one exec's record, output (a page or a stream) and kill.
import { Router, type Request } from 'express';
import { principalOf } from '../auth';
import { getExec } from '../../registry/execs';
import { requireExecSlot } from '../data-plane-caps';
import { ApiError } from '../errors';
import { checkIdParam, idempotencyKey } from '../request-params';
import { authorize } from '../sandboxes/access';
import { exec as waitedExec } from '../sandboxes/ops';
import type { SandboxContext } from '../sandboxes/context';
import { ID_PATTERN, execRequest } from '../schemas';
import { wrap } from '../wrap';
import {
  execInputOf,
  execRecord,
  killExec,
  outcomeError,
  outputPage,
  startBackgroundExec,
  startStreamingExec,
} from './calls';
import { outcomeProbe, rowProbe } from './ends';
import { execIdFor } from './exec-id';
import { ExecFollower } from './follow';
import { ExecStreamLimitError, OwnerExecStreamLimitError, type ExecOutputHub } from './output-hub';
import { outputQuery, outputSeq } from './schemas';

export function execRoutes(ctx: SandboxContext, hub: ExecOutputHub): Router {
  const exec = wrap(async (req, res) => {
    const body = execRequest.parse(req.body ?? {});
    const p = principalOf(req);
    const id = req.params.id!;
    const key = idempotencyKey(req);
    const input = execInputOf(body);
    const streaming = !body.background && (body.stream || acceptsEvents(req));
    if (!body.background && !streaming) {
      res.json(await waitedExec(ctx, p, id, input, key));
      return;
    }
    const execId = execIdFor(key);
    // A retry of a keyed exec (even after the run continued as new, where the update id no longer
    // dedupes): the exec is there, so it is followed or answered, never started a second time.
    const { owner } = await authorize(ctx, p, id); // a 404 comes before any cap
    const existing = key === undefined ? null : await getExec(ctx.pool, id, execId);
    if (existing && body.background) {
      res.status(200).location(`/v1/sandboxes/${id}/execs/${execId}`).json(existing);
      return;
    }
    if (existing) {
      const follower = new ExecFollower(hub, { sandboxId: id, execId, after: 0, owner: p.owner });
      await register(follower);
      res.setHeader('Hourglass-Exec-Id', execId);
      const first = { event: 'start', data: { execId, sandboxId: id } };
      follower.start(res, rowProbe(ctx.pool, id, execId), { first });
      return;
    }
    // Counted against the sandbox's owner (an admin acting on it uses that owner's share).
    await requireExecSlot(ctx.pool, ctx.opts, owner);
    if (body.background) {
      const started = await startBackgroundExec(ctx, p, id, input, execId);
      res
        .status(202)
        .location(`/v1/sandboxes/${id}/execs/${started.execId}`)
        .json({ execId: started.execId, sandboxId: id, state: 'running' });
      return;
    }
    // Registered before the exec starts: a full process refuses it before it runs, and no output is missed.
    const follower = new ExecFollower(hub, { sandboxId: id, execId, after: 0, owner: p.owner });
    await register(follower);
    let live: Awaited<ReturnType<typeof startStreamingExec>>;
    try {
      live = await startStreamingExec(ctx, p, id, input, execId);
    } catch (err) {
      follower.release();
      throw err; // a refusal: a JSON error, no stream
    }
    // The end is the update's outcome; a failure names how the sandbox ended (the registry says).
    const end = outcomeProbe(execId, live.outcome, (err) => outcomeError(ctx, id, err));
    void end.settled.finally(() => follower.wake());
    res.setHeader('Hourglass-Exec-Id', execId);
    follower.start(res, end.probe, {
      first: { event: 'start', data: { execId, sandboxId: id } },
      onStop: () => live.abandon(),
    });
  });

  const getOne = wrap(async (req, res) => {
    res.json(await execRecord(ctx, principalOf(req), req.params.id!, req.params.execId!));
  });

  const output = wrap(async (req, res) => {
    const q = outputQuery.parse(req.query);
    const p = principalOf(req);
    const id = req.params.id!;
    const execId = req.params.execId!;
    const following = q.follow ?? acceptsEvents(req);
    if (!following) {
      res.json(await outputPage(ctx, p, id, execId, q.after, q.limit));
      return;
    }
    const after = resumeSeq(req, q.after);
    await execRecord(ctx, p, id, execId); // 404 before the stream
    const follower = new ExecFollower(hub, { sandboxId: id, execId, after, owner: p.owner });
    await register(follower);
    follower.start(res, rowProbe(ctx.pool, id, execId), {});
  });

  const kill = wrap(async (req, res) => {
    res.json(await killExec(ctx, principalOf(req), req.params.id!, req.params.execId!));
  });

  const r = Router();
  checkIdParam(r, 'sandbox');
  r.param('execId', (_req, _res, next, execId: string) =>
    next(ID_PATTERN.test(execId) ? undefined : new ApiError(400, 'invalid_argument', 'execId: not an exec id')),
  );
  r.post('/:id/exec', exec);
  r.get('/:id/execs/:execId', getOne);
  r.get('/:id/execs/:execId/output', output);
  r.post('/:id/execs/:execId/kill', kill);
  return r;
}

async function register(follower: ExecFollower): Promise<void> {
  try {
    await follower.register();
  } catch (err) {
    if (err instanceof OwnerExecStreamLimitError) {
      const message = `${err.owner} already has ${err.max} exec streams open; close one first`;
      throw new ApiError(429, 'rate_limited', message, { max: err.max }, 5);
    }
    if (!(err instanceof ExecStreamLimitError)) throw err;
    // Not the caller's doing: another API instance (or this one, a little later) can take it.
    throw new ApiError(503, 'unavailable', `this API instance has ${err.max} exec streams open; try again`, {}, 5);
  }
}

/** `Accept: text/event-stream` (what EventSource and the typed client send). */
function acceptsEvents(req: Request): boolean {
  return (req.get('accept') ?? '').includes('text/event-stream');
}

/** Where a follower starts: Last-Event-ID (sent by EventSource on reconnect) wins over `after`. */
function resumeSeq(req: Request, after: number): number {
  const header = req.get('last-event-id');
  if (header === undefined || header.trim() === '') return after;
  const parsed = outputSeq.safeParse(header.trim());
  if (parsed.success && /^\d+$/.test(header.trim())) return parsed.data;
  throw new ApiError(400, 'invalid_argument', 'Last-Event-ID: not an output seq (a whole number)');
}
