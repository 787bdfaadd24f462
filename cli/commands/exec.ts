// `hourglass sandbox exec|execs|output|kill`: commands in a sandbox, waited for, streamed or in the background.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CommandRequest, ExecRecord, HourglassClient } from '../../client/index';
import { contextOf } from '../context';
import { writeExecEvents } from '../exec-output';
import { collectPairs, integer, shown } from '../format';

/** The API's cap on standard input (it travels through workflow history). */
const MAX_STDIN_BYTES = 256 * 1024;

export function addExecCommands(sandbox: Command): void {
  sandbox
    .command('exec <id> <command...>')
    .description(
      'run a command; streams its output as it comes when stdout is a terminal (else waits for the result), ' +
        "and exits with the command's exit code; Ctrl-C while streaming kills it",
    )
    .option('--timeout <seconds>', 'command timeout', integer)
    .option('--env <NAME=VALUE>', 'an environment variable (repeat for more)', collectPairs('--env'), {})
    .option('--stdin <file>', "standard input from a file ('-': this process's stdin; at most 256 KiB)")
    .option('--stream', 'stream the output as it comes (the default on a terminal; with --json: one event per line)')
    .option('--no-stream', 'wait and print the whole result')
    .option('--background', 'start it and print its execId at once (see: execs, output, kill)')
    .action(async (id: string, command: string[], o, cmd: Command) => {
      const { client, json, print } = contextOf(cmd);
      const body = {
        command,
        timeoutSeconds: o.timeout,
        env: Object.keys(o.env).length ? o.env : undefined,
        stdinBase64: o.stdin === undefined ? undefined : (await stdinOf(o.stdin)).toString('base64'),
      };
      if (o.background) {
        const started = await client.startBackground(id, body);
        return print(started, () => started.execId);
      }
      // --json alone keeps the one JSON answer scripts expect; --stream says otherwise.
      if (o.stream ?? (process.stdout.isTTY && !json)) {
        process.exitCode = await streamKillingOnInterrupt(client, id, body, json);
        return;
      }
      const out = await client.exec(id, body);
      print(out, () => `${out.stdout}${out.stderr ? `\n[stderr]\n${out.stderr}` : ''}\n[exit ${out.exitCode}]`);
      if (!json) process.exitCode = out.exitCode;
    });

  sandbox
    .command('execs <id> [execId]')
    .description("the sandbox's commands (or one) with their state and exit code")
    .action(async (id: string, execId: string | undefined, _o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      if (execId) {
        const one = await client.getExec(id, execId);
        return print(one, () => formatExec(one));
      }
      const all = await client.listExecs(id);
      print(all, () => all.items.map(formatExec).join('\n') || 'no commands yet');
    });

  sandbox
    .command('output <id> <execId>')
    .description("an exec's output so far; with --follow, as it comes until it ends (exits with its exit code)")
    .option('--follow', 'keep following until the command ends')
    .option('--after <seq>', 'only output after this seq', integer, 0)
    .action(async (id: string, execId: string, o, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      if (o.follow) {
        process.exitCode = await writeExecEvents(client.followOutput(id, execId, { after: o.after }), json);
        return;
      }
      for (let after = o.after; ;) {
        const page = await client.getExecOutput(id, execId, { after, limit: 1000 });
        for (const c of page.items) {
          const data = 'text' in c ? Buffer.from(c.text) : Buffer.from(c.base64, 'base64');
          if (json) process.stdout.write(`${JSON.stringify(c)}\n`);
          else (c.stream === 'stderr' ? process.stderr : process.stdout).write(data);
        }
        if (page.items.length === 0 || page.nextAfter === after) break;
        after = page.nextAfter;
      }
    });

  sandbox
    .command('kill <id> <execId>')
    .description('kill a running command (answers once it has ended)')
    .action(async (id: string, execId: string, _o, cmd: Command) => {
      const { client, print } = contextOf(cmd);
      const killed = await client.killExec(id, execId);
      print(killed, () => formatExec(killed));
    });
}

/** Ctrl-C kills the command in the sandbox too, as it would a local one (exit 130, as a shell's). */
async function streamKillingOnInterrupt(
  client: HourglassClient,
  id: string,
  body: CommandRequest,
  json: boolean,
): Promise<number> {
  let execId: string | undefined;
  const onInterrupt = () => {
    const kill = execId ? client.killExec(id, execId) : Promise.resolve();
    void kill.catch(() => {}).finally(() => process.exit(130));
  };
  process.once('SIGINT', onInterrupt);
  try {
    return await writeExecEvents(
      tap(client.execStream(id, body), (e) => {
        if (e.type === 'start') execId = e.execId;
      }),
      json,
    );
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

async function* tap<T>(items: AsyncIterable<T>, see: (item: T) => void): AsyncGenerator<T> {
  for await (const item of items) {
    see(item);
    yield item;
  }
}

function formatExec(e: ExecRecord): string {
  const end = e.exitCode === null ? '' : ` exit ${e.exitCode}`;
  const error = e.error ? `  (${shown(e.error)})` : '';
  return `${e.execId}  ${e.state.padEnd(8)} ${e.mode.padEnd(10)}${end}  ${shown(e.command.join(' '))}${error}`;
}

async function stdinOf(file: string): Promise<Buffer> {
  let data: Buffer;
  if (file === '-') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of process.stdin) {
      chunks.push(c as Buffer);
      size += (c as Buffer).length;
      if (size > MAX_STDIN_BYTES) break;
    }
    data = Buffer.concat(chunks);
  } else {
    data = await readFile(file);
  }
  if (data.length > MAX_STDIN_BYTES) {
    throw new Error(`--stdin: at most ${MAX_STDIN_BYTES} bytes of standard input (got more)`);
  }
  return data;
}
