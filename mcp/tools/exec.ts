// exec: runs a command through the streaming exec, so a long one reports its output as it comes
// (progress notifications) and the answer is the whole run, cut to a size a model can read.
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { execBody } from '../../api/schemas';
import { randomUUID } from 'node:crypto';
import { execIdFor } from '../../api/execs/exec-id';
import { HourglassApiError, type HourglassClient } from '../../client';
import type { ExecEvent } from '../../client';
import { CappedOutput } from './capped-output';
import { progressOf } from './progress';
import { mcpLog } from '../log';
import { failure, guarded, text } from './result';
import { sandboxId } from './sandbox-id';

/** Per stream: the first and the last bytes kept in the answer (≈ 16 KiB of text each at most). */
const HEAD_BYTES = 4 * 1024;
const TAIL_BYTES = 12 * 1024;
/** The newest output a progress notification carries. */
const PROGRESS_BYTES = 2 * 1024;
/** A quiet command still reports this often: a client that resets its timeout on progress waits on. */
const KEEPALIVE_MS = 10_000;

const fields = execBody.shape;

export function registerExecTool(server: McpServer, client: HourglassClient): void {
  server.registerTool(
    'exec',
    {
      title: 'Run a command in a sandbox',
      description:
        "Runs a command in a sandbox and waits for it to end; the working directory is the sandbox's " +
        'workspace. "command" is an argv list, not a shell line: for pipes, redirects or cd use ' +
        '["sh", "-c", "cd src && make 2>&1 | tail -50"]. Returns the exit code, stdout and stderr; each is ' +
        `cut to its first ${HEAD_BYTES / 1024} KiB and last ${TAIL_BYTES / 1024} KiB with a note saying how ` +
        'much was left out. While it runs, progress notifications (progress = seconds so far) carry its newest ' +
        'output, when the caller asks for progress. A non-zero exit code is a normal answer, not a tool error.',
      inputSchema: {
        sandboxId,
        command: fields.command.describe('Program and arguments, e.g. ["python3", "main.py"]'),
        timeoutSeconds: fields.timeoutSeconds.describe('Kill the command after this many seconds'),
        env: fields.env.describe('Extra environment variables'),
        stdin: fields.stdin.describe("Text written to the command's stdin (at most 256 KiB), then closed"),
      },
      annotations: { readOnlyHint: false, destructiveHint: true, openWorldHint: true },
    },
    guarded('exec', async ({ sandboxId: id, ...body }, extra) => {
      const out = {
        stdout: new CappedOutput(HEAD_BYTES, TAIL_BYTES),
        stderr: new CappedOutput(HEAD_BYTES, TAIL_BYTES),
      };
      const recent = new CappedOutput(0, PROGRESS_BYTES);
      const progress = progressOf(extra);
      const notices: string[] = [];
      let end: Extract<ExecEvent, { type: 'exit' | 'error' }> | undefined;
      let execId: string | undefined;
      // progress = seconds since the start: it grows with every notification, output or not.
      const started = Date.now();
      const report = () =>
        progress.report((Date.now() - started) / 1000, () =>
          recent.total ? recent.text(() => '…') : `running for ${Math.round((Date.now() - started) / 1000)} s`,
        );
      const keepalive = setInterval(report, KEEPALIVE_MS);
      // A key of our own names the exec before any answer: a cancel before `start` can still kill it.
      const idempotencyKey = `mcp-${randomUUID()}`;
      try {
        for await (const event of client.execStream(id, body, { signal: extra.signal, idempotencyKey })) {
          if (event.type === 'start') {
            execId = event.execId;
          } else if (event.type === 'stdout' || event.type === 'stderr') {
            out[event.type].push(event.data);
            recent.push(event.data);
            report();
          } else if (event.type === 'notice') {
            notices.push(event.message);
          } else if (event.type === 'exit' || event.type === 'error') {
            end = event;
          }
        }
      } catch (err) {
        // The caller cancelled the call: the command goes too, rather than run on unseen. Before its
        // `start` the exec may not exist yet (the API starts it even though we left): killed once it does.
        if (extra.signal.aborted) {
          if (execId) {
            await client.killExec(id, execId).catch(() => {});
          } else {
            const named = execIdFor(idempotencyKey);
            void killOnceStarted(client, id, named).then((outcome) =>
              mcpLog.info({ sandboxId: id, execId: named, outcome }, `exec cancelled before its start: ${outcome}`),
            );
          }
        }
        throw err;
      } finally {
        clearInterval(keepalive);
        await progress.finish();
      }
      const output = renderOutput(out.stdout, out.stderr, notices);
      if (!end) return failure('error: the output stream ended without an exit event', output);
      if (end.type === 'error') return failure(`${end.error.code}: ${end.error.message}`, output);
      const timedOut = end.timedOut ? ' — timed out, killed' : '';
      return text(`exit code ${end.exitCode} (${(end.durationMs / 1000).toFixed(1)} s${timedOut})`, output);
    }),
  );
}

/** How long a cancelled exec may take to appear: the API's wait for the workflow to accept it, and some. */
const START_WINDOW_MS = 45_000;
const KILL_RETRY_MS = 500;

/** Kills an exec that may not exist yet: 404 means not yet (retried), 409 that it has already ended. */
export async function killOnceStarted(
  client: Pick<HourglassClient, 'killExec'>,
  id: string,
  execId: string,
  windowMs = START_WINDOW_MS,
): Promise<'killed' | 'ended' | 'gave up'> {
  for (const until = Date.now() + windowMs; ;) {
    try {
      // Still running: the workflow did not hold it yet (just recorded), so once more.
      if ((await client.killExec(id, execId)).state !== 'running') return 'killed';
    } catch (err) {
      const status = err instanceof HourglassApiError ? err.status : 0;
      if (status === 409) return 'ended';
      if (status !== 404 && status !== 0 && status < 500) return 'gave up';
    }
    if (Date.now() >= until) return 'gave up';
    await new Promise((r) => setTimeout(r, KILL_RETRY_MS));
  }
}

function renderOutput(stdout: CappedOutput, stderr: CappedOutput, notices: string[]): string {
  const part = (name: string, o: CappedOutput) =>
    o.total === 0
      ? `${name}: (empty)`
      : `${name}:\n${o.text(
          (n) =>
            `[… ${n.toLocaleString('en')} bytes of ${name} left out; to see them, write the output to a file ` +
            'and look with head, tail or grep …]',
        )}`;
  const lines = [part('stdout', stdout), part('stderr', stderr)];
  if (notices.length) lines.push(`notices:\n${notices.join('\n')}`);
  return lines.join('\n');
}
