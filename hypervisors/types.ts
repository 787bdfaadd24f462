// The one interface every driver implements. Nothing outside hypervisors/ knows a driver's details.

export interface SandboxSpec {
  /** Hourglass sandbox id; drivers derive their own names from it so create is idempotent. */
  id: string;
  /** Driver-specific template/image name; undefined = the driver's default. */
  template?: string;
  labels: Record<string, string>;
  cpus?: number;
  memoryMiB?: number;
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
}

export interface ExecRequest {
  command: string[];
  timeoutSeconds?: number;
  env?: Record<string, string>;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
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
  /** Release clients/timers; sandboxes keep running. */
  close?(): Promise<void>;
}
