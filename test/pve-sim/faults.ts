// Failure injection for docs/proxmox-api.md's §10 list. Faults are consumed by the handler of the matching op.
import { mulberry32 } from '../../bench/lib/prng';

export type SimOp =
  | 'nextid'
  | 'resources'
  | 'clone'
  | 'config'
  | 'status'
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'suspend'
  | 'resume'
  | 'reset'
  | 'destroy'
  | 'task-status'
  | 'task-log'
  | 'agent-ping'
  | 'agent-exec'
  | 'agent-exec-status'
  | 'agent-file-read'
  | 'agent-file-write'
  | 'any';

export type FaultKind =
  /** Answer status+message instead of running the handler (a synchronous error). */
  | 'http'
  /** The task runs and ends with exitstatus = message; a failed clone removes its target. */
  | 'task-error'
  /** The task succeeds with `WARNINGS: n` (proxmox-api.md §7: this is success). */
  | 'task-warnings'
  /** Short-term flock timeout: sync 500 for config, task error for clone/start/stop/destroy (proxmox-api.md §9). */
  | 'lock-timeout'
  /** TCP reset: the socket is destroyed without an answer. */
  | 'reset'
  /** The handler runs, then pveproxy answers 596: the client cannot know the outcome. */
  | 'lose-response'
  /** The guest agent does not answer: `QEMU guest agent is not running`. */
  | 'agent-down'
  /** QMP times out: `VM N qmp command 'guest-exec' failed - got timeout`. */
  | 'qmp-timeout'
  /** exec-status keeps answering `exited: 0`. */
  | 'exec-hang'
  /** Another client takes the id nextid just returned, so the clone meets `config file already exists`. */
  | 'nextid-race';

export interface Fault {
  op: SimOp;
  kind: FaultKind;
  /** For 'http' (default 500). */
  status?: number;
  /** Error text (the reason phrase / exitstatus); kinds have sensible defaults. */
  message?: string;
  /** For a 400: the `errors` map. */
  errors?: Record<string, string>;
  /** For 'task-warnings' (default 1). */
  warnings?: number;
  /** Only for this VM (for clone: the source template's vmid or the newid). */
  vmid?: number;
  /** How many requests it hits (default 1; Infinity until cleared). */
  times?: number;
  /** Answer only after this long (e.g. the 10 s flock wait, scaled down). */
  delayMs?: number;
}

export interface FaultHandle {
  /** Requests it still hits. */
  readonly remaining: number;
  clear(): void;
}

export interface RandomFailures {
  /** Probability (0..1) that a request fails before any handler runs. */
  rate: number;
  /** Picked uniformly; default: 595 proxy connection refused (never processed, safe to retry). */
  answers?: Array<{ status: number; message: string }>;
  seed?: number;
}

interface ActiveFault extends Fault {
  left: number;
}

export class FaultBook {
  private faults: ActiveFault[] = [];
  private random: (RandomFailures & { next: () => number }) | undefined;

  add(fault: Fault): FaultHandle {
    const active: ActiveFault = { ...fault, left: fault.times ?? 1 };
    this.faults.push(active);
    const forget = () => {
      this.faults = this.faults.filter((f) => f !== active);
    };
    return {
      get remaining() {
        return active.left;
      },
      clear() {
        active.left = 0;
        forget();
      },
    };
  }

  clear(): void {
    this.faults = [];
    this.random = undefined;
  }

  setRandom(random: RandomFailures | undefined): void {
    this.random = random && { ...random, next: mulberry32(random.seed ?? 42) };
  }

  /** Consumes and returns the first live fault for this op (and vmid) whose kind is one of `kinds`. */
  take(op: SimOp, kinds: readonly FaultKind[], vmid?: number): Fault | undefined {
    const hit = this.faults.find(
      (f) =>
        f.left > 0 &&
        (f.op === op || f.op === 'any') &&
        kinds.includes(f.kind) &&
        (f.vmid === undefined || f.vmid === vmid),
    );
    if (!hit) return undefined;
    hit.left -= 1;
    if (hit.left <= 0) this.faults = this.faults.filter((f) => f !== hit);
    return hit;
  }

  /** A random transport-level failure for this request, if the dice say so. */
  rollRandom(): { status: number; message: string } | undefined {
    const r = this.random;
    if (!r || r.next() >= r.rate) return undefined;
    const answers = r.answers ?? [
      { status: 595, message: 'Errors during connection establishment, proxy handshake: Connection refused' },
    ];
    return answers[Math.floor(r.next() * answers.length)];
  }
}
