// virsh, the driver's only way to libvirtd: one process per call, its errors sorted into what the
// lifecycle can act on (gone, bad spec, busy: retry, libvirtd down: retry).
import { errorText } from '../common/error-text';
import { runTool } from '../common/run-command';
import { BadSpecError, BusyError, HypervisorError, NotFoundError } from '../errors';
import type { OpContext } from '../types';
import { domainNameFor } from './domain-xml';

const VIRSH_TIMEOUT_MS = 120_000;

export class Virsh {
  constructor(readonly uri: string) {}

  /**
   * Runs `virsh -c <uri> …` about sandbox `id`, returns stdout. `ignore` matches errors that mean
   * "already done". Errors become NotFoundError / BadSpecError / BusyError / retryable HypervisorError.
   */
  async run(id: string, args: string[], ctx?: OpContext, ignore?: RegExp): Promise<string> {
    try {
      return await runTool(['virsh', '-c', this.uri, ...args], { signal: ctx?.signal, timeoutMs: VIRSH_TIMEOUT_MS });
    } catch (err) {
      const text = errorText(err);
      if (ignore?.test(text)) return '';
      throw classifyVirshError(id, args[0] ?? '', text, err);
    }
  }

  /**
   * One guest-agent command; returns its "return" member. The command goes to virsh on its stdin,
   * not in its argv: a guest-exec carries the caller's env values, and any local user can read a
   * process's argv (and the kernel caps one argv string at 128 KiB; a line on stdin has no cap).
   */
  async agentCommand(id: string, command: object, timeoutS: number, ctx?: OpContext): Promise<unknown> {
    return (await this.agentCommands(id, [command], timeoutS, ctx))[0];
  }

  /** Several guest-agent commands, in order, in one virsh process (each process costs ~20 ms). */
  async agentCommands(id: string, commands: object[], timeoutS: number, ctx?: OpContext): Promise<unknown[]> {
    // virsh's shell reads a single-quoted word verbatim; JSON can spell every ' as \u0027.
    const script = commands
      .map((command) => {
        const json = JSON.stringify(command).replace(/'/g, '\\u0027');
        return `qemu-agent-command --domain ${domainNameFor(id)} --timeout ${timeoutS} '${json}'\n`;
      })
      .join('');
    let out: string;
    try {
      out = await runTool(['virsh', '-q', '-c', this.uri], {
        signal: ctx?.signal,
        timeoutMs: VIRSH_TIMEOUT_MS,
        input: script,
      });
    } catch (err) {
      throw classifyVirshError(id, 'qemu-agent-command', errorText(err), err);
    }
    // The shell echoes "virsh # <command>" before each answer (an answer is the lines after it),
    // and prints one more prompt at the end of its input.
    const answers = out.split('virsh # ').slice(1, commands.length + 1);
    if (answers.length !== commands.length) {
      throw new HypervisorError(
        `sandbox ${id}: virsh answered ${answers.length} of ${commands.length} agent commands`,
        'libvirt_error',
      );
    }
    return answers.map((a) => (JSON.parse(a.split('\n').slice(1).join('\n').trim()) as { return?: unknown }).return);
  }
}

const UNAVAILABLE = /Failed to connect socket|failed to connect to the hypervisor/i;
const GONE = /failed to get domain|Domain not found|no domain with matching/i;
const BAD_SPEC =
  /XML error|unsupported configuration|invalid argument|Cannot access storage file|No such file or directory/i;
const BUSY = new RegExp(
  [
    'guest agent is not',
    'agent is not (connected|responding|available)',
    'cannot acquire state change lock',
    'Timed out during operation',
    'domain is not running',
  ].join('|'),
  'i',
);

function classifyVirshError(id: string, op: string, text: string, cause: unknown): Error {
  const what = `sandbox ${id}: virsh ${op}: ${text}`;
  // libvirtd is down or restarting (scripts/start-libvirtd.sh): worth retrying.
  if (UNAVAILABLE.test(text)) return new HypervisorError(what, 'libvirt_unavailable', false);
  if (GONE.test(text)) return new NotFoundError(id, text);
  if (BAD_SPEC.test(text)) return new BadSpecError(what);
  if (/Permission denied/i.test(text)) {
    return new BadSpecError(
      `${what} (every directory above the overlay and image must be searchable by the qemu user)`,
    );
  }
  if (BUSY.test(text)) return new BusyError(what);
  if (cause instanceof Error && cause.name === 'AbortError') return cause;
  return new HypervisorError(what, 'libvirt_error', false);
}
