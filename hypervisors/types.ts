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
