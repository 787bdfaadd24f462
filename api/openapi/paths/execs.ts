// Exec routes (api/execs/routes.ts): a command waited for, streamed or run in the background; one
// exec's record, output and kill.
import type { OpenAPIRegistry, ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { execIdParams, lastSeqHeader, outputQuery } from '../../execs/schemas';
import { execRequest } from '../../schemas';
import { authErrors, ErrorEnvelope, idParams, idempotencyKeyHeader, json } from '../common';
import { ExecOutput, ExecRecord } from '../responses';

const tags = ['sandboxes'];

/** The 200 of a streamed exec or a followed output: `text/event-stream` frames. */
const execEventStream = (withStart: boolean): ResponseConfig['content'] => ({
  'text/event-stream': {
    schema: z.string().openapi({
      description:
        (withStart ? '`event: start` first (`data: {"execId","sandboxId"}`), then ' : '') +
        '`event: stdout` / `event: stderr` with `id: <seq>` and `data: {"seq","text"}` (valid UTF-8) or ' +
        '`{"seq","base64"}`; `event: notice` (`{"message"}`, e.g. output past the 64 MiB kept per exec dropped); ' +
        'exactly one terminal event without an id: `event: exit` (`{"execId","exitCode","durationMs","timedOut"}`) ' +
        'or `event: error` (`{"error":{"code","message","details"}}`, e.g. invalid_state naming the destroy ' +
        'reason). A `: keepalive` comment every 15 s. Reconnect through GET …/execs/{execId}/output with ' +
        '`Last-Event-ID` for the rest, with no gap and no duplicate.',
      example:
        'event: start\ndata: {"execId":"…","sandboxId":"sbx-1a2b3c4d"}\n\nid: 1\nevent: stdout\n' +
        'data: {"seq":1,"text":"hello\\n"}\n\nevent: exit\ndata: {"execId":"…","exitCode":0,"durationMs":12,' +
        '"timedOut":false}\n\n',
    }),
  },
});

const tooManyStreams = {
  429: {
    description:
      'rate_limited: the owner has too many exec streams open in this API process (100), or (starting a streamed ' +
      'or background command) already runs HOURGLASS_MAX_RUNNING_EXECS_PER_OWNER (64) of them — `details.cap` ' +
      'is `running_execs` then; see Retry-After',
    headers: z.object({ 'Retry-After': z.string().optional() }),
    content: json(ErrorEnvelope),
  },
  503: {
    description:
      'unavailable (this API process has too many exec streams open, 1,000; see Retry-After) or busy ' +
      '(the sandbox is busy; retry)',
    headers: z.object({ 'Retry-After': z.string().optional() }),
    content: json(ErrorEnvelope),
  },
};

const BackgroundStarted = z
  .object({
    execId: z.string(),
    sandboxId: z.string(),
    state: z.literal('running'),
  })
  .openapi('BackgroundExec');

const OutputItem = z
  .object({
    seq: z.number().int(),
    stream: z.enum(['stdout', 'stderr', 'notice']),
    text: z.string().optional().openapi({ description: 'The chunk, when it is valid UTF-8' }),
    base64: z.string().optional().openapi({ description: 'The chunk’s bytes, when it is not valid UTF-8' }),
  })
  .openapi('ExecOutputChunk');

const OutputPage = z
  .object({
    items: z.array(OutputItem),
    nextAfter: z.number().int().openapi({ description: 'Pass as `after` for the next page' }),
    finished: z.boolean().openapi({ description: 'The exec has ended and this page holds the last of its output' }),
  })
  .openapi('ExecOutputPage');

export function registerExecPaths(registry: OpenAPIRegistry): void {
  const params = idParams('sandbox');
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/{id}/exec',
    tags,
    summary: 'Run a command in a RUNNING sandbox: wait for its result, stream its output, or run it in the background',
    description:
      'Plain: waits and answers the result. `stream: true` or `Accept: text/event-stream`: Server-Sent Events ' +
      'as the output comes (header `Hourglass-Exec-Id`); refusals come first, as JSON errors. ' +
      '`background: true`: 202 with the execId at once; follow it under /execs/{execId}.',
    request: {
      params,
      headers: idempotencyKeyHeader(
        'Names one exec: a retry with the same key gets the first run’s result (streamed: follows the same exec)',
      ),
      body: { required: true, content: json(execRequest.openapi('ExecRequest')) },
    },
    responses: {
      200: {
        description: 'The command’s result (a non-zero exit code is still a 200), or its stream',
        headers: z.object({
          'Hourglass-Exec-Id': z.string().optional().openapi({ description: 'Streamed: the exec’s id' }),
        }),
        content: { ...json(ExecOutput), ...execEventStream(true) },
      },
      202: {
        description: '`background: true`: started; it runs on until it ends, is killed or the sandbox goes',
        headers: z.object({ Location: z.string().openapi({ description: '/v1/sandboxes/{id}/execs/{execId}' }) }),
        content: json(BackgroundStarted),
      },
      ...authErrors(404, 409, 413, 502, 504),
      // 200 also answers a background retry whose Idempotency-Key names an exec already there: its ExecRecord.
      ...tooManyStreams,
    },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/execs/{execId}',
    tags,
    summary: 'One exec: its state (running, exited, killed, failed), exit code and kept output',
    request: { params: execIdParams },
    responses: { 200: { description: 'The exec', content: json(ExecRecord) }, ...authErrors(404) },
  });
  registry.registerPath({
    method: 'get',
    path: '/v1/sandboxes/{id}/execs/{execId}/output',
    tags,
    summary: 'An exec’s output: a JSON page, or with follow=true a stream that ends with its exit',
    description:
      'Streamed (`follow=true` or `Accept: text/event-stream`): from `Last-Event-ID` or `after`, no `start` ' +
      'event, ending with the terminal event once the exec has ended.',
    request: { params: execIdParams, query: outputQuery, headers: lastSeqHeader },
    responses: {
      200: {
        description: 'A page of output, or the stream',
        content: { ...json(OutputPage), ...execEventStream(false) },
      },
      ...authErrors(404),
      ...tooManyStreams,
    },
  });
  registry.registerPath({
    method: 'post',
    path: '/v1/sandboxes/{id}/execs/{execId}/kill',
    tags,
    summary: 'Kill a running streamed or background exec (its whole process tree); answers once it has ended',
    request: { params: execIdParams },
    responses: {
      200: { description: 'The exec, ended (state killed)', content: json(ExecRecord) },
      ...authErrors(404, 409, 502, 504),
    },
  });
}
