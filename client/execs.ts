// Commands in a sandbox: run and wait, stream, run in the background, follow, kill, and the record.
import { HourglassApiError } from './errors';
import { toExecEvent, isTerminal } from './exec-events';
import { followSse } from './follow';
import { seg, type Http } from './http';
import type {
  BackgroundExec,
  CommandRequest,
  ExecEvent,
  ExecOutput,
  ExecOutputPage,
  ExecRecord,
  ExecRequest,
} from './types';

const base = (id: string) => `/v1/sandboxes/${seg(id)}`;
const SSE = 'text/event-stream';

/** Runs a command and waits for its whole result. */
export function exec(
  http: Http,
  id: string,
  body: ExecRequest,
  opts: { idempotencyKey?: string; signal?: AbortSignal } = {},
): Promise<ExecOutput> {
  const headers = { 'idempotency-key': opts.idempotencyKey };
  return http.json('POST', `${base(id)}/exec`, { body, headers, signal: opts.signal });
}

/**
 * Runs a command and yields its output as it is produced, then one exit (or error) event. A dropped
 * connection is picked up again from the exec's output with Last-Event-ID: no chunk twice, none lost.
 * Refusals (the sandbox not RUNNING, a bad body) throw HourglassApiError before anything is yielded.
 * With an idempotencyKey, a retry of the same call follows the same exec instead of starting another.
 */
export async function* execStream(
  http: Http,
  id: string,
  body: CommandRequest,
  opts: { signal?: AbortSignal; idempotencyKey?: string } = {},
): AsyncGenerator<ExecEvent> {
  let execId: string | undefined;
  const messages = followSse({
    signal: opts.signal,
    isLast: isTerminal,
    open: async (lastId, reopen, signal) => {
      if (!reopen) {
        const res = await http.send('POST', `${base(id)}/exec`, {
          body: { ...body, stream: true },
          headers: { accept: SSE, 'idempotency-key': opts.idempotencyKey },
          signal,
        });
        execId = res.headers.get('hourglass-exec-id') ?? undefined;
        return res;
      }
      if (!execId) {
        throw new HourglassApiError(0, 'stream_interrupted', 'the exec stream dropped before it named its exec');
      }
      return openOutput(http, id, execId, lastId, undefined, signal);
    },
  });
  for await (const m of messages) {
    const event = toExecEvent(m);
    if (event?.type === 'start') execId ??= event.execId;
    if (event) yield event;
  }
}

/** Starts a command that runs on after this answer (202): poll it with getExec, read it with followOutput. */
export function startBackground(http: Http, id: string, body: CommandRequest): Promise<BackgroundExec> {
  return http.json('POST', `${base(id)}/exec`, { body: { ...body, background: true } });
}

/** An exec's output from `after` (a seq; default the start) as it comes, then its exit or error. */
export async function* followOutput(
  http: Http,
  id: string,
  execId: string,
  opts: { after?: number; signal?: AbortSignal } = {},
): AsyncGenerator<ExecEvent> {
  const messages = followSse({
    signal: opts.signal,
    isLast: isTerminal,
    open: (lastId, _reopen, signal) => openOutput(http, id, execId, lastId, opts.after, signal),
  });
  for await (const m of messages) {
    const event = toExecEvent(m);
    if (event) yield event;
  }
}

/** One page of an exec's output (no waiting): chunks after `after`, and whether the exec has ended. */
export function getExecOutput(
  http: Http,
  id: string,
  execId: string,
  query: { after?: number; limit?: number } = {},
): Promise<ExecOutputPage> {
  return http.json('GET', `${base(id)}/execs/${seg(execId)}/output`, { query });
}

/** Kills a running exec; answers once it has ended (state killed). 409 if it had already ended. */
export function killExec(http: Http, id: string, execId: string): Promise<ExecRecord> {
  return http.json('POST', `${base(id)}/execs/${seg(execId)}/kill`);
}

export function getExec(http: Http, id: string, execId: string): Promise<ExecRecord> {
  return http.json('GET', `${base(id)}/execs/${seg(execId)}`);
}

/** Every exec of the sandbox, oldest first. */
export function listExecs(http: Http, id: string): Promise<{ items: ExecRecord[] }> {
  return http.json('GET', `${base(id)}/execs`);
}

/** The output stream after the last seq received (Last-Event-ID, as EventSource resumes) or after `after`. */
function openOutput(
  http: Http,
  id: string,
  execId: string,
  lastId: string | undefined,
  after: number | undefined,
  signal: AbortSignal,
): Promise<Response> {
  return http.send('GET', `${base(id)}/execs/${seg(execId)}/output`, {
    query: { follow: 'true', after: lastId === undefined ? after : undefined },
    headers: { accept: SSE, 'last-event-id': lastId },
    signal,
  });
}
