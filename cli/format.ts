// How the CLI shows sandboxes, sessions, jobs and files in a terminal, and parses its own arguments.
import type { FileEntry, Job, SandboxStatus, SessionStatus } from '../client/index';

/** Text from the API shown in a terminal: another owner's label must not move an admin's cursor. */
export function shown(s: string | undefined | null): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return (s ?? '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
}

/** A repeatable `--flag key=value` option gathered into one record. */
export const collectPairs =
  (flag: string) =>
  (value: string, acc: Record<string, string>): Record<string, string> => {
    const i = value.indexOf('=');
    if (i <= 0) throw new Error(`${flag} wants key=value (got '${value}')`);
    return { ...acc, [value.slice(0, i)]: value.slice(i + 1) };
  };
export const collectLabels = collectPairs('--label');

/** A whole number option (commander hands strings over): a typo is an error, not NaN sent to the API. */
export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`expected a whole number (got '${value}')`);
  return n;
}

const line = (k: string, v: string) => `  ${k.padEnd(10)} ${v}`;
const pairs = (o: object) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${shown(String(v))}`)
    .join(' ');

export function formatSandbox(s: SandboxStatus): string {
  return [
    `${s.id}  ${s.state}`,
    line('owner', s.owner),
    line('driver', `${s.driver}${s.isolation ? ` (${s.isolation})` : ''}`),
    ...(s.limits ? [line('limits', pairs(s.limits))] : []),
    line('created', s.createdAt),
    line('expires', s.expiresAt ?? '-'),
    ...(s.sessionId ? [line('session', s.sessionId)] : []),
    ...(Object.keys(s.labels ?? {}).length ? [line('labels', pairs(s.labels))] : []),
    ...(s.destroyReason ? [line('reason', shown(s.destroyReason))] : []),
    ...(s.error ? [line('error', shown(s.error))] : []),
  ].join('\n');
}

export function formatSession(s: SessionStatus): string {
  return [
    `${s.id}  ${s.state}`,
    line('heartbeat', `every ${s.heartbeatTimeoutSeconds} s at most`),
    line('deadline', s.deadline),
    line('sandboxes', s.sandboxes.join(' ') || '-'),
    ...(s.endReason ? [line('reason', shown(s.endReason))] : []),
  ].join('\n');
}

export function formatJob(j: Job): string {
  return [
    `${j.id}  ${j.state} (sandbox ${j.sandboxState})`,
    ...j.steps.map(
      (s, i) =>
        `  ${String(i + 1).padStart(3)}. [exit ${s.exitCode}${s.timedOut ? ', timed out' : ''}] ` +
        shown(s.command.join(' ')),
    ),
    ...(j.error ? [line('error', shown(j.error))] : []),
  ].join('\n');
}

export function formatEntry(e: FileEntry): string {
  const type = { file: '-', directory: 'd', symlink: 'l', other: '?' }[e.type];
  return `${type}${e.mode.padStart(4, '0')}  ${String(e.size).padStart(10)}  ${e.mtime}  ${shown(e.name)}`;
}
