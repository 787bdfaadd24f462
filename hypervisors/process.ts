// The embedded default driver: each sandbox is a private working directory. When bubblewrap is
// installed, a long-lived holder process owns new pid/mount/ipc/uts (and net) namespaces and every
// command enters them with nsenter; killing the holder (pid 1 inside) ends every process in it.
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { chown, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { BadSpecError, BusyError, NotFoundError, NotReadyError } from './errors';
import { hasExited, isAlive, processStat, recordProcess, signalIfOurs, waitForExit, type RecordedProcess } from './proc-identity';
import { runCommand } from './run-command';
import type { ExecRequest, ExecResult, Hypervisor, OpContext, SandboxSpec, VmInfo } from './types';

const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Commands run as this unprivileged user (nobody): no capabilities, no setuid gains. */
const SANDBOX_UID = 65534;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface SandboxMeta {
  id: string;
  labels: Record<string, string>;
  createdAt: string;
  isolation: string;
  /** The namespace holder (bwrap's child, pid 1 inside); absent when stopped or without bwrap. */
  holder?: RecordedProcess;
}

export interface ProcessOptions {
  stateDir: string;
  /** Use bubblewrap when found (default). false = plain directories, no isolation. */
  useBubblewrap: boolean;
  /** Give sandboxes the host network (off by default). */
  network: boolean;
}

export class ProcessHypervisor implements Hypervisor {
  readonly name = 'process';
  private readonly root: string;
  private readonly bwrap: string | null;

  constructor(private readonly opts: ProcessOptions) {
    this.root = path.join(opts.stateDir, 'process');
    this.bwrap = opts.useBubblewrap ? findOnPath('bwrap') : null;
  }

  private dir(id: string) {
    return path.join(this.root, safeName(id));
  }

  private isolationLabel(): string {
    if (!this.bwrap) return 'none (bubblewrap not installed: commands run unconfined in the sandbox directory)';
    return `bubblewrap (pid, mount, ipc, uts${this.opts.network ? '' : ', net'} namespaces; uid ${SANDBOX_UID}, no capabilities)`;
  }

  async create(spec: SandboxSpec): Promise<VmInfo> {
    if (spec.template && spec.template !== 'default') {
      throw new BadSpecError(`unknown template '${spec.template}' for driver process; available: default`);
    }
    const existing = await this.readMeta(spec.id);
    if (existing) {
      // A retry of create: start the holder again if it died, keep the directory.
      if (this.bwrap && !(existing.holder && (await isAlive(existing.holder)))) await this.startHolder(existing);
      return this.info(existing);
    }
    const dir = this.dir(spec.id);
    await mkdir(path.join(dir, 'work'), { recursive: true });
    if (this.bwrap && process.getuid?.() === 0) await chown(path.join(dir, 'work'), SANDBOX_UID, SANDBOX_UID);
    const meta: SandboxMeta = {
      id: spec.id,
      labels: spec.labels,
      createdAt: new Date().toISOString(),
      isolation: this.isolationLabel(),
    };
    // Record first: a worker that dies right after spawning the holder leaves a sandbox that
    // list() still finds and destroy() can still kill (through bwrap-info.json).
    await this.writeMeta(meta);
    if (this.bwrap) await this.startHolder(meta);
    return this.info(meta);
  }

  /** Starts `bwrap … sleep infinity` detached, so the sandbox outlives the worker process. */
  private async startHolder(meta: SandboxMeta): Promise<void> {
    const dir = this.dir(meta.id);
    const infoPath = path.join(dir, 'bwrap-info.json');
    await this.killHolders(meta.id); // strays from a create that died half-way: one holder per sandbox
    await rm(infoPath, { force: true });
    const infoFd = openSync(infoPath, 'w');
    const logFd = openSync(path.join(dir, 'holder.log'), 'a');
    try {
      const child = spawn(this.bwrap!, [...this.bwrapArgs(dir), '--info-fd', '3', 'sleep', 'infinity'], {
        detached: true,
        stdio: ['ignore', logFd, logFd, infoFd],
      });
      child.unref();
    } finally {
      closeSync(infoFd);
      closeSync(logFd);
    }
    const holder = await recordProcess(await waitForChildPid(infoPath, 5000));
    try {
      await this.writeMeta({ ...meta, holder });
    } catch (err) {
      // Destroyed meanwhile (a start racing a destroy): the holder must not outlive its record.
      await signalIfOurs(holder, 'SIGKILL');
      throw err;
    }
    meta.holder = holder;
  }

  private bwrapArgs(dir: string): string[] {
    return [
      '--unshare-pid', '--unshare-ipc', '--unshare-uts', ...(this.opts.network ? [] : ['--unshare-net']),
      '--ro-bind', '/usr', '/usr',
      '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
      '--symlink', 'usr/sbin', '/sbin',
      '--ro-bind', '/etc', '/etc',
      '--proc', '/proc', '--dev', '/dev', '--perms', '1777', '--tmpfs', '/tmp',
      '--bind', path.join(dir, 'work'), '/work', '--chdir', '/work',
      '--hostname', 'sandbox', '--clearenv', '--setenv', 'PATH', SANDBOX_PATH,
    ];
  }

  async waitReady(id: string, timeoutMs: number, ctx?: OpContext): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      ctx?.signal?.throwIfAborted();
      try {
        const r = await this.exec(id, { command: ['true'], timeoutSeconds: 5 });
        if (r.exitCode === 0) return;
        last = r.stderr;
      } catch (err) {
        if (err instanceof NotFoundError) throw err;
        last = (err as Error).message;
      }
      ctx?.progress?.('waiting for sandbox to answer');
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new NotReadyError(id, timeoutMs, last);
  }

  async exec(id: string, req: ExecRequest, ctx?: OpContext): Promise<ExecResult> {
    const meta = await this.readMeta(id);
    if (!meta) throw new NotFoundError(id);
    const env = { PATH: SANDBOX_PATH, HOME: '/work', ...req.env };
    const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    if (req.command[0]?.includes('=') || Object.keys(env).some((k) => !ENV_NAME.test(k))) {
      throw new BadSpecError(`sandbox ${id}: env names must match ${ENV_NAME} and the program name must not contain '='`);
    }
    const timeoutMs = (req.timeoutSeconds ?? 300) * 1000;
    if (!this.bwrap) {
      return runCommand(req.command, { cwd: path.join(this.dir(id), 'work'), env, timeoutMs, signal: ctx?.signal });
    }
    if (!meta.holder || !(await isAlive(meta.holder))) {
      throw new BusyError(`sandbox ${id} is not running (its namespace holder is gone); start it first`);
    }
    // nsenter itself runs with a fixed environment (the caller's variables could otherwise
    // preload code into a root process on the host); inside, setpriv drops to an unprivileged
    // user with no capabilities before `env -i` sets the caller's variables.
    const argv = [
      'nsenter', '-t', String(meta.holder.pid), '-a', '-r', '-w', '--',
      'setpriv', `--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_UID}`, '--clear-groups', '--no-new-privs',
      '--bounding-set=-all', '--inh-caps=-all', '--',
      'env', '-i', ...envArgs, ...req.command,
    ];
    return runCommand(argv, { env: { PATH: SANDBOX_PATH }, timeoutMs, signal: ctx?.signal });
  }

  /** Stop ends every process but keeps the directory; start brings up a fresh namespace. */
  async stop(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new NotFoundError(id);
    await this.killHolders(id, meta.holder);
    meta.holder = undefined;
    await this.writeMeta(meta);
  }

  async start(id: string): Promise<void> {
    const meta = await this.readMeta(id);
    if (!meta) throw new NotFoundError(id);
    if (this.bwrap && !(meta.holder && (await isAlive(meta.holder)))) await this.startHolder(meta);
  }

  async destroy(id: string): Promise<{ existed: boolean }> {
    const dir = this.dir(id);
    const meta = await this.readMeta(id);
    const existed = meta !== null || (await exists(dir));
    await this.killHolders(id, meta?.holder);
    await rm(dir, { recursive: true, force: true });
    return { existed };
  }

  /**
   * Kills the sandbox's holder: the recorded one, and any bwrap still binding this sandbox's
   * directory that never got recorded (a worker killed between spawning and writing the record).
   */
  private async killHolders(id: string, recorded?: RecordedProcess): Promise<void> {
    const found = await this.unrecordedHolders(id);
    const pids = new Set(found.map((p) => p.pid));
    // SIGKILL to pid 1 of each pid namespace (the recorded holder, or a bwrap whose parent is the
    // outer bwrap): the kernel kills everything inside, and the outer bwrap then exits and reaps it.
    const inits = [...(recorded ? [recorded] : []), ...found.filter((p) => pids.has(p.ppid))];
    for (const p of inits) await signalIfOurs(p, 'SIGKILL');
    for (const p of [...inits, ...found]) {
      if (await waitForExit(p, 2000)) continue;
      await signalIfOurs(p, 'SIGKILL'); // an outer bwrap that did not follow its child
      if (!(await waitForExit(p, 3000))) throw new BusyError(`sandbox ${id}: holder pid ${p.pid} did not exit after SIGKILL`);
    }
  }

  /** bwrap processes (outer and namespace init) whose command line binds this sandbox's work dir. */
  private async unrecordedHolders(id: string): Promise<(RecordedProcess & { ppid: number })[]> {
    const work = path.join(this.dir(id), 'work');
    const found: (RecordedProcess & { ppid: number })[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0');
        if (!argv[0]?.endsWith('bwrap') || !argv.includes(work)) continue;
        const stat = await processStat(Number(entry));
        if (stat && !hasExited(stat)) found.push({ pid: Number(entry), startTime: stat.startTime, ppid: stat.ppid });
      } catch {
        /* exited meanwhile */
      }
    }
    return found;
  }

  async list(): Promise<VmInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return [];
    }
    const infos: VmInfo[] = [];
    for (const name of names) {
      const meta = await this.readMetaFile(path.join(this.root, name));
      if (meta) infos.push(await this.info(meta));
    }
    return infos;
  }

  async describe(id: string): Promise<VmInfo | null> {
    const meta = await this.readMeta(id);
    return meta ? this.info(meta) : null;
  }

  private async info(meta: SandboxMeta): Promise<VmInfo> {
    const running = this.bwrap ? Boolean(meta.holder && (await isAlive(meta.holder))) : true;
    return {
      id: meta.id,
      driver: this.name,
      state: running ? 'running' : 'stopped',
      isolation: meta.isolation,
      details: { dir: path.join(this.dir(meta.id), 'work'), holderPid: meta.holder?.pid, labels: meta.labels },
    };
  }

  private readMeta(id: string) {
    return this.readMetaFile(this.dir(id));
  }

  private async readMetaFile(dir: string): Promise<SandboxMeta | null> {
    try {
      return JSON.parse(await readFile(path.join(dir, 'sandbox.json'), 'utf8')) as SandboxMeta;
    } catch {
      return null;
    }
  }

  private async writeMeta(meta: SandboxMeta): Promise<void> {
    const file = path.join(this.dir(meta.id), 'sandbox.json');
    // Write-then-rename so a crash never leaves a half-written record (and an unfindable sandbox).
    await writeFile(`${file}.tmp`, JSON.stringify(meta, null, 2));
    await rename(`${file}.tmp`, file);
  }
}

export function createProcessHypervisor(env: NodeJS.ProcessEnv, stateDir: string): Hypervisor {
  return new ProcessHypervisor({
    stateDir,
    useBubblewrap: env.HOURGLASS_PROCESS_BWRAP !== '0',
    network: env.HOURGLASS_PROCESS_NETWORK === '1',
  });
}

async function waitForChildPid(infoPath: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const pid = JSON.parse(await readFile(infoPath, 'utf8'))['child-pid'];
      if (typeof pid === 'number') return pid;
    } catch {
      /* bwrap has not written it yet */
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`bubblewrap did not report its child pid within ${timeoutMs} ms (see holder.log)`);
}

function findOnPath(bin: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** Sandbox ids become directory names: refuse anything that could escape the state dir. */
function safeName(id: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(id)) throw new BadSpecError(`invalid sandbox id '${id}'`);
  return id;
}
