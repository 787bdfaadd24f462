// The one interface every driver implements. Nothing outside hypervisors/ knows a driver's details.

export interface SandboxSpec {
  /** Hourglass sandbox id; drivers derive their own names from it so create is idempotent. */
  id: string;
  /** Driver-specific template/image name; undefined = the driver's default. */
  template?: string;
  labels: Record<string, string>;
  /** Resource limits asked for (already checked against the operator's maxima); unset = the driver's default. */
  limits?: SandboxLimits;
}

/** Per-sandbox resource limits. Each driver enforces what it can and reports what it applied. */
export interface SandboxLimits {
  /** vCPUs (VMs, whole numbers) or CPU time in cores (process sandboxes: a cgroup quota, may be fractional). */
  cpus?: number;
  memoryMiB?: number;
  /** Processes and threads (process sandboxes: cgroup pids.max). */
  pids?: number;
  /** Size of the sandbox's private /tmp (process sandboxes: a size-limited tmpfs). */
  tmpMiB?: number;
  /** Size of the sandbox's workspace (process sandboxes: /work) or disk. */
  diskMiB?: number;
}

export type VmState = 'running' | 'stopped' | 'unknown';

export interface VmInfo {
  id: string;
  driver: string;
  state: VmState;
  /** How the sandbox is isolated, said plainly (e.g. "bubblewrap", "none", "qemu-tcg"). */
  isolation: string;
  /** Driver facts worth showing an operator (pid, dir, domain name, vmid…). */
  details: Record<string, unknown>;
  /** The limits actually enforced (a field is absent when the driver could not enforce it). */
  limits?: SandboxLimits;
}

/** What every driver does with a request, and guarantees of its result: guest/contract.ts. */
export interface ExecRequest {
  command: string[];
  /** Default DEFAULT_EXEC_TIMEOUT_SECONDS; at the deadline the command's whole process tree is killed. */
  timeoutSeconds?: number;
  /** Added to GUEST_PATH and HOME, the only other variables a command gets. */
  env?: Record<string, string>;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** The exact bytes, only when the output is not valid UTF-8 (see guest/output.ts). */
  stdoutBase64?: string;
  stderrBase64?: string;
  durationMs: number;
  timedOut: boolean;
}

/** Where a streaming exec hands its output, in the order the driver read it (≤100 ms after it was written). */
export type OutputSink = (stream: 'stdout' | 'stderr', chunk: Buffer) => void;

/** A running command's output, held back while its reader is behind. */
export interface OutputFlow {
  pause(): void;
  resume(): void;
}

/** An exec whose output streams (execStream) and which may be fed a small stdin. */
export interface StreamExecRequest extends ExecRequest {
  /** Given to the command's standard input, which is then closed (empty: closed at once). */
  stdin?: Buffer;
  /**
   * Hears the command's output flow once it has started, so a sink that falls behind can hold the
   * command back instead of dropping output (drivers whose agent cannot pause a command never call it).
   */
  onStart?: (flow: OutputFlow) => void;
}

/** One entry of a directory listing. */
export interface FileEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  /** Permission bits, octal: '644'. */
  mode: string;
  /** Last modification, ISO 8601. */
  mtime: string;
}

/**
 * A sandbox's files, always inside its workspace (workspaceOf): a path is relative to it or an
 * absolute path beneath it; `..`, paths outside it and symlinks pointing out are BadSpecError.
 * Every operation runs inside the sandbox (its namespaces and user, or its guest), never on the
 * host's view of it, so a symlink swapped in mid-operation still cannot reach a host file.
 * A path that does not exist is PathNotFoundError.
 */
export interface SandboxFileSystem {
  /** The directory paths are confined to, as commands in the sandbox see it ('/work', '/root'). */
  workspaceOf(id: string): Promise<string>;
  /**
   * Creates or replaces `path` whole (written beside it, then renamed: never half a file). Mode:
   * permission bits ≤ 1777 (no setuid/setgid). With `expect`, bytes of another size or sha256 are
   * BadSpecError and the target is left as it was.
   */
  writeFile(
    id: string,
    path: string,
    data: AsyncIterable<Buffer>,
    opts: { mode?: number; expect?: { size: number; sha256: string } },
    ctx?: OpContext,
  ): Promise<{ path: string; size: number }>;
  /**
   * A file's bytes, or a directory as a tar archive, handed to `sink` in order. Past `maxBytes`
   * (a growing or sparse file too) it stops reading: HypervisorError code too_large, permanent.
   */
  readFile(
    id: string,
    path: string,
    sink: (chunk: Buffer) => Promise<void>,
    ctx?: OpContext,
    opts?: { maxBytes?: number },
  ): Promise<{ path: string; kind: 'file' | 'directory'; size: number }>;
  /** At most `limit` entries (and ~256 KiB of JSON), sorted by name; truncated says some were left out. */
  listFiles(
    id: string,
    path: string,
    opts: { limit: number },
    ctx?: OpContext,
  ): Promise<{ path: string; entries: FileEntry[]; truncated: boolean }>;
  /** A directory only with recursive; a path that does not exist: existed false. */
  removeFile(id: string, path: string, opts: { recursive: boolean }, ctx?: OpContext): Promise<{ existed: boolean }>;
  makeDirectory(id: string, path: string, opts: { parents: boolean }, ctx?: OpContext): Promise<{ path: string }>;
}

/** Passed to long operations: cancellation and a progress callback (activities heartbeat from it). */
export interface OpContext {
  signal?: AbortSignal;
  progress?: (detail: string) => void;
}

export interface Hypervisor {
  readonly name: string;
  /** Idempotent by spec.id: a retry returns the sandbox already made. */
  create(spec: SandboxSpec, ctx?: OpContext): Promise<VmInfo>;
  /** Resolves once the guest answers commands; throws NotReadyError after timeoutMs. */
  waitReady(id: string, timeoutMs: number, ctx?: OpContext): Promise<void>;
  exec(id: string, req: ExecRequest, ctx?: OpContext): Promise<ExecResult>;
  /**
   * exec with its output handed to `onOutput` while the command runs (every byte, uncapped); the
   * result is the same as exec's (capped copy of the output). The contract of exec holds.
   */
  execStream(id: string, req: StreamExecRequest, onOutput: OutputSink, ctx?: OpContext): Promise<ExecResult>;
  /** The sandbox's files (the data plane's transfers, listings). */
  readonly fileSystem: SandboxFileSystem;
  stop(id: string, ctx?: OpContext): Promise<void>;
  start(id: string, ctx?: OpContext): Promise<void>;
  /** Removes everything the sandbox owns. A sandbox that does not exist counts as destroyed. */
  destroy(id: string, ctx?: OpContext): Promise<{ existed: boolean }>;
  /** Only sandboxes Hourglass created (tag/prefix/state-dir check), never anything else. */
  list(): Promise<VmInfo[]>;
  /** null when the sandbox does not exist. */
  describe(id: string): Promise<VmInfo | null>;
  /** One line for the startup banner: how this host isolates and limits sandboxes (or why it cannot). */
  summary?(): string;
  /** Release clients/timers; sandboxes keep running. */
  close?(): Promise<void>;
}
