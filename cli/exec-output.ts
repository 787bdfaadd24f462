// Writes a streamed exec to this process as it comes: stdout to stdout, stderr to stderr (or one
// JSON line per event with --json), and answers the exit code the process should end with.
import { once } from 'node:events';
import type { ExecEvent } from '../client/index';
import { shown } from './format';

/** An exec that ended with an error event (destroyed while it ran …) and not an exit code. */
const FAILED = 1;

export async function writeExecEvents(events: AsyncIterable<ExecEvent>, json: boolean): Promise<number> {
  for await (const e of events) {
    if (json) {
      await write(process.stdout, `${JSON.stringify(jsonOf(e))}\n`);
      if (e.type === 'exit') return e.exitCode;
      if (e.type === 'error') return FAILED;
      continue;
    }
    switch (e.type) {
      case 'stdout':
        await write(process.stdout, e.data);
        break;
      case 'stderr':
        await write(process.stderr, e.data);
        break;
      case 'notice':
        await write(process.stderr, `[hourglass] ${shown(e.message)}\n`);
        break;
      case 'exit':
        if (e.timedOut) await write(process.stderr, `[hourglass] timed out after ${e.durationMs} ms\n`);
        return e.exitCode;
      case 'error':
        await write(process.stderr, `error: ${e.error.code}: ${shown(e.error.message)}\n`);
        return FAILED;
    }
  }
  await write(process.stderr, 'error: the output ended without an exit event\n');
  return FAILED;
}

/** A chunk as JSON: text when it is UTF-8, else base64 (as the API sends it). */
function jsonOf(e: ExecEvent): unknown {
  if (e.type !== 'stdout' && e.type !== 'stderr') return e;
  const text = e.data.toString('utf8');
  const exact = Buffer.from(text).equals(e.data);
  return { type: e.type, seq: e.seq, ...(exact ? { text } : { base64: e.data.toString('base64') }) };
}

/** Honours backpressure: a slow reader of our stdout slows the download, nothing piles up here. */
async function write(stream: NodeJS.WriteStream, data: string | Buffer): Promise<void> {
  if (!stream.write(data)) await once(stream, 'drain');
}
