// `hourglass sandbox …`: the REST API from a terminal; --json prints the raw response.
import type { Command } from 'commander';
import type { SandboxStatus } from '../workflows/types';
import { ApiClient } from './api-client';

interface GlobalOpts {
  url: string;
  token?: string;
  json?: boolean;
}

type Printer = (value: unknown, human: () => string) => void;

export function addSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('create, inspect, exec into, renew and destroy sandboxes');
  const ctx = (cmd: Command): { api: ApiClient; print: Printer } => {
    const o = cmd.optsWithGlobals<GlobalOpts>();
    return {
      api: new ApiClient(o.url, o.token),
      print: (value, human) => console.log(o.json ? JSON.stringify(value, null, 2) : human()),
    };
  };

  sandbox
    .command('create')
    .description('create a sandbox and wait until it is RUNNING')
    .requiredOption('--ttl <seconds>', 'lease length in seconds', Number)
    .option('--driver <name>', 'hypervisor driver (default: the server default)')
    .option('--template <name>', 'template/image')
    .option('--max-lifetime <seconds>', 'hard cap on renewals, in seconds', Number)
    .option('--label <k=v...>', 'labels', collectLabels, {})
    .option('--memory <MiB>', 'memory limit', Number)
    .option('--cpus <n>', 'CPU limit (cores; whole vCPUs on VMs)', Number)
    .option('--pids <n>', 'process limit (process sandboxes)', Number)
    .option('--tmp <MiB>', 'size of /tmp (process sandboxes)', Number)
    .option('--disk <MiB>', 'size of the workspace (process sandboxes)', Number)
    .option('--idempotency-key <key>', 'same key → same sandbox')
    .option('--no-wait', 'return at once instead of waiting for RUNNING')
    .action(async (o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const limits = { memoryMiB: o.memory, cpus: o.cpus, pids: o.pids, tmpMiB: o.tmp, diskMiB: o.disk };
      const { body } = await api.request<SandboxStatus>(
        'POST',
        '/v1/sandboxes',
        {
          ttlSeconds: o.ttl,
          driver: o.driver,
          template: o.template,
          maxLifetimeSeconds: o.maxLifetime,
          labels: o.label,
          limits: Object.values(limits).some((v) => v !== undefined) ? limits : undefined,
          wait: o.wait,
        },
        o.idempotencyKey ? { 'idempotency-key': o.idempotencyKey } : {},
      );
      print(body, () => formatSandbox(body));
    });

  sandbox
    .command('list')
    .option('--state <states>', 'comma-separated states')
    .option('--label <k=v>', 'label filter')
    .option('--owner <owner>', "one owner's sandboxes (admins; others always see their own)")
    .option('--limit <n>', 'page size', '50')
    .option('--cursor <cursor>', 'next page')
    .action(async (o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const q = new URLSearchParams({ limit: o.limit });
      if (o.state) q.set('state', o.state);
      if (o.label) q.set('label', o.label);
      if (o.owner) q.set('owner', o.owner);
      if (o.cursor) q.set('cursor', o.cursor);
      const { body } = await api.request<{ items: SandboxStatus[]; nextCursor: string | null }>(
        'GET',
        `/v1/sandboxes?${q}`,
      );
      print(body, () =>
        [
          ...body.items.map((s) => {
            const columns = `${s.id}  ${s.state.padEnd(12)} ${s.driver.padEnd(8)} ${s.owner.padEnd(12)}`;
            return `${columns} expires ${s.expiresAt ?? '-'}`;
          }),
          body.nextCursor ? `… more: --cursor ${body.nextCursor}` : `${body.items.length} sandbox(es)`,
        ].join('\n'),
      );
    });

  sandbox.command('get <id>').action(async (id: string, _o, cmd: Command) => {
    const { api, print } = ctx(cmd);
    const { body } = await api.request<SandboxStatus>('GET', `/v1/sandboxes/${encodeURIComponent(id)}`);
    print(body, () => formatSandbox(body));
  });

  sandbox.command('events <id>').action(async (id: string, _o, cmd: Command) => {
    const { api, print } = ctx(cmd);
    const { body } = await api.request<{
      items: { seq: number; from: string | null; to: string; reason: string; at: string }[];
    }>('GET', `/v1/sandboxes/${encodeURIComponent(id)}/events`);
    print(body, () =>
      body.items
        .map((e) => `${e.at}  ${(e.from ?? '-').padEnd(12)} → ${e.to.padEnd(12)} ${shown(e.reason)}`)
        .join('\n'),
    );
  });

  sandbox
    .command('exec <id> <command...>')
    .option('--timeout <seconds>', 'command timeout', Number)
    .action(async (id: string, command: string[], o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const { body } = await api.request<{ exitCode: number; stdout: string; stderr: string }>(
        'POST',
        `/v1/sandboxes/${encodeURIComponent(id)}/exec`,
        { command, timeoutSeconds: o.timeout },
      );
      print(body, () => `${body.stdout}${body.stderr ? `\n[stderr]\n${body.stderr}` : ''}\n[exit ${body.exitCode}]`);
      if (!cmd.optsWithGlobals<GlobalOpts>().json) process.exitCode = body.exitCode;
    });

  sandbox
    .command('renew <id>')
    .requiredOption('--ttl <seconds>', 'new lease length from now', Number)
    .option('--signal', 'renew by signal (no answer, works without a worker)')
    .action(async (id: string, o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const { body } = await api.request<{ expiresAt?: string }>(
        'POST',
        `/v1/sandboxes/${encodeURIComponent(id)}/lease/renew`,
        {
          ttlSeconds: o.ttl,
          async: Boolean(o.signal),
        },
      );
      print(body, () => (body.expiresAt ? `lease renewed until ${body.expiresAt}` : 'renewal signal sent'));
    });

  for (const op of ['stop', 'start'] as const) {
    sandbox.command(`${op} <id>`).action(async (id: string, _o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const { body } = await api.request<SandboxStatus>('POST', `/v1/sandboxes/${encodeURIComponent(id)}/${op}`);
      print(body, () => formatSandbox(body));
    });
  }

  sandbox
    .command('destroy <id>')
    .option('--force', 'terminate the workflow and destroy directly, from any state')
    .option('--reason <text>', 'recorded in the event log')
    .action(async (id: string, o, cmd: Command) => {
      const { api, print } = ctx(cmd);
      const { body } = await api.request<{ state: string }>('POST', `/v1/sandboxes/${encodeURIComponent(id)}/destroy`, {
        force: Boolean(o.force),
        reason: o.reason,
      });
      print(body, () => (o.force ? `${id} DESTROYED (force)` : `${id}: destroy requested (was ${body.state})`));
    });
}

export function addOperatorCommands(program: Command): void {
  const ctx = (cmd: Command) => {
    const o = cmd.optsWithGlobals<GlobalOpts>();
    return { api: new ApiClient(o.url, o.token), json: Boolean(o.json) };
  };
  program
    .command('prune')
    .description('run the reaper now: fix every drift between hypervisors, registry and Temporal')
    .option('--dry-run', 'report what would be done, change nothing')
    .option('--older-than <seconds>', 'only sandboxes older than this', Number)
    .action(async (o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const { body } = await api.request<{
        count: number;
        dryRun: boolean;
        items: { id: string; drift: string; action: string }[];
      }>('POST', '/v1/sandboxes/prune', { dryRun: Boolean(o.dryRun), olderThanSeconds: o.olderThan });
      if (json) return console.log(JSON.stringify(body, null, 2));
      for (const i of body.items) console.log(`${i.id}  ${i.drift.padEnd(20)} ${i.action}`);
      console.log(`${body.count} drift(s)${body.dryRun ? ' (dry run: nothing changed)' : ' fixed'}`);
    });
  program
    .command('destroy-all')
    .description('destroy every sandbox with a label (bulk destroy)')
    .requiredOption('--label <k=v>', 'label filter')
    .option('--force', 'force-destroy')
    .action(async (o, cmd: Command) => {
      const { api, json } = ctx(cmd);
      const { body } = await api.request<{
        count: number;
        failed: number;
        items: { id: string; ok: boolean; error?: { message: string } }[];
      }>('POST', '/v1/sandboxes/destroy', { label: o.label, force: Boolean(o.force) });
      if (json) return console.log(JSON.stringify(body, null, 2));
      for (const i of body.items) console.log(`${i.id}  ${i.ok ? 'ok' : `FAILED: ${i.error?.message}`}`);
      console.log(`${body.count} sandbox(es), ${body.failed} failed`);
      if (body.failed) process.exitCode = 1;
    });
}

/** Text from the API shown in a terminal: another owner's label must not move an admin's cursor. */
function shown(s: string | undefined | null): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this replaces
  return (s ?? '').replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, '?');
}

function collectLabels(value: string, acc: Record<string, string>): Record<string, string> {
  const i = value.indexOf('=');
  if (i <= 0) throw new Error(`--label wants key=value (got '${value}')`);
  return { ...acc, [value.slice(0, i)]: value.slice(i + 1) };
}

function formatSandbox(s: SandboxStatus): string {
  return [
    `${s.id}  ${s.state}`,
    `  owner      ${s.owner}`,
    `  driver     ${s.driver}${s.isolation ? ` (${s.isolation})` : ''}`,
    ...(s.limits
      ? [
          `  limits     ${Object.entries(s.limits)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`,
        ]
      : []),
    `  created    ${s.createdAt}`,
    `  expires    ${s.expiresAt ?? '-'}`,
    ...(Object.keys(s.labels ?? {}).length
      ? [
          `  labels     ${Object.entries(s.labels)
            .map(([k, v]) => `${k}=${shown(v)}`)
            .join(' ')}`,
        ]
      : []),
    ...(s.destroyReason ? [`  reason     ${shown(s.destroyReason)}`] : []),
    ...(s.error ? [`  error      ${shown(s.error)}`] : []),
  ].join('\n');
}
