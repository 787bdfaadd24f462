// What the Temporal UI shows for each workflow Hourglass starts (its static summary, one line in the
// list) and for each step inside the sandbox workflow (activity and timer summaries in its history).
// User metadata, not commands: changing these words never breaks the replay of a running workflow.
// Pure: the API, the worker and the workflows import it.
import type { SandboxRequest } from './types';

/** Summaries are single lines: a long command or reason is cut here. */
const MAX_SUMMARY_CHARS = 80;

/** One line, at most `max` characters: whitespace runs (newlines in a script) become one space. */
export function oneLine(text: string, max = MAX_SUMMARY_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `sbx-… · process · alice · ttl 300 s · template alpine · session ses-…` */
export function sandboxSummary(r: SandboxRequest): string {
  const parts = [r.id, r.driver, r.owner, `ttl ${r.ttlSeconds} s`];
  if (r.template) parts.push(`template ${r.template}`);
  if (r.sessionId) parts.push(`session ${r.sessionId}`);
  return parts.join(' · ');
}

/** The rest of the request, for the workflow's details panel (Temporal markdown, several lines). */
export function sandboxDetails(r: SandboxRequest): string {
  const lines = [`**max lifetime** ${r.maxLifetimeSeconds} s · **ready timeout** ${r.readyTimeoutSeconds} s`];
  const labels = Object.entries(r.labels);
  if (labels.length) lines.push(`**labels** ${labels.map(([k, v]) => `${k}=${v}`).join(', ')}`);
  if (r.job) {
    const n = r.job.commands.length;
    lines.push(`**job** ${n} command${n === 1 ? '' : 's'}${r.job.keepalive ? ' (keepalive)' : ''}`);
  }
  return lines.join('\n');
}

/** `ses-… · session · alice · heartbeat 60 s` */
export const sessionSummary = (id: string, owner: string, heartbeatTimeoutSeconds: number): string =>
  `${id} · session · ${owner} · heartbeat ${heartbeatTimeoutSeconds} s`;

/** `force destroy sbx-… · process · force destroy by alice: stuck` */
export const forceDestroySummary = (id: string, driver: string, why: string): string =>
  oneLine(`force destroy ${id} · ${driver} · ${why}`);

/** `whk_… · webhook · alice · sandbox.expired sandbox.destroyed` */
export const webhookSummary = (w: { id: string; owner: string; events: string[] }): string =>
  oneLine(`${w.id} · webhook · ${w.owner} · ${w.events.join(' ')}`);

/** The reaper's schedule: `reaper · every 30 s · grace 30 s` */
export const reaperScheduleSummary = (intervalSeconds: number, graceSeconds: number): string =>
  `reaper · every ${intervalSeconds} s · grace ${graceSeconds} s`;

/** A prune asked through the API: `reaper · prune now (dry run) · older than 600 s` */
export function pruneSummary(req: { dryRun: boolean; olderThanSeconds?: number }): string {
  const olderThan = req.olderThanSeconds !== undefined ? ` · older than ${req.olderThanSeconds} s` : '';
  return `reaper · prune now${req.dryRun ? ' (dry run)' : ''}${olderThan}`;
}

// --- inside the sandbox workflow -------------------------------------------------------------------

export const createSummary = (driver: string, template: string | undefined): string =>
  `create sandbox on ${driver}${template ? ` from ${template}` : ''}`;

export const bootSummary = (timeoutSeconds: number): string => `wait for the guest (up to ${timeoutSeconds} s)`;

/** `destroy: lease expired` */
export const destroySummary = (reason: string): string => oneLine(`destroy: ${reason}`);

/** `exec 'ls -la'`, `job step 2: 'make test'` */
export const execSummary = (command: readonly string[], what: string): string =>
  `${what} '${oneLine(command.join(' '), MAX_SUMMARY_CHARS - what.length - 3)}'`;

/** A file operation: `files write '/work/out.txt'` */
export const fileOpSummary = (op: string, path: string): string =>
  `files ${op} '${oneLine(path, MAX_SUMMARY_CHARS - op.length - 9)}'`;

/** The lease's durable timer: `lease until 2026-12-03T18:00:00.000Z` */
export const leaseTimerSummary = (expiresAt: number): string => `lease until ${new Date(expiresAt).toISOString()}`;

/** The session's timer: `heartbeat due by 2026-12-03T18:00:00.000Z` */
export const heartbeatTimerSummary = (deadline: number): string =>
  `heartbeat due by ${new Date(deadline).toISOString()}`;
