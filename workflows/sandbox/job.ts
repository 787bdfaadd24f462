// A job: its commands run in order as soon as the sandbox is RUNNING. The first that fails or
// times out ends it; so does the lease. Without keepalive, the sandbox goes with the job.
import { jobEnded } from '../end-reasons';
import { runCommand } from './exec';
import type { SandboxRun } from './run';

/** Characters of stdout and of stderr a job step keeps; the full output is in the execs table. */
export const STEP_EXCERPT_CHARS = 4096;

export async function runJob(run: SandboxRun): Promise<void> {
  const { job } = run;
  const spec = run.request.job;
  if (!job || !spec) return;
  job.state = 'RUNNING';
  for (const command of spec.commands) {
    if (run.state !== 'RUNNING') return;
    try {
      const cmd = { command, timeoutSeconds: spec.commandTimeoutSeconds };
      const step = job.steps.length;
      const out = await runCommand(run, cmd, `job-${step}`, `job step ${step + 1}:`);
      // Full output (byte-exact) is in the execs table; the workflow keeps text excerpts so its
      // payloads stay small: never the base64 of binary output.
      const { stdoutBase64: _out, stderrBase64: _err, ...result } = out;
      job.steps.push({ command, ...result, stdout: excerpt(out.stdout), stderr: excerpt(out.stderr) });
      if (job.state !== 'RUNNING') break; // the lease ended while the command ran (TIMEOUT)
      if (out.timedOut || out.exitCode !== 0) {
        job.state = out.timedOut ? 'TIMEOUT' : 'FAILED';
        break;
      }
    } catch (err) {
      // The lease may have ended mid-command (TIMEOUT, set by holdLease): keep that verdict.
      if (job.state === 'RUNNING') {
        job.state = 'FAILED';
        job.error = err instanceof Error ? err.message : String(err);
      }
      break;
    }
  }
  if (job.state === 'RUNNING') job.state = 'COMPLETED';
  run.publish.record(run.state, `job ${job.state.toLowerCase()}`);
  if (!spec.keepalive) run.requestDestroy(`job ${job.state.toLowerCase()}`, jobEnded(job.state));
}

function excerpt(text: string): string {
  if (text.length <= STEP_EXCERPT_CHARS) return text;
  // Never cut between the two halves of a surrogate pair: a lone half cannot be stored.
  const end = /[\ud800-\udbff]/.test(text[STEP_EXCERPT_CHARS - 1]!) ? STEP_EXCERPT_CHARS - 1 : STEP_EXCERPT_CHARS;
  return `${text.slice(0, end)}…[truncated; full output in /execs]`;
}
