export interface RunRequest {
  file: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Uint8Array;
  timeoutMs?: number;
  maxOutputBytes: number;
}
export interface RunResult {
  exitCode: number;
  out: Buffer;
  outBytes: number;
  err: Buffer;
  errBytes: number;
  timedOut: boolean;
  durationMs: number;
}
export interface DetachRequest {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logFile: string;
  stdoutToLog?: boolean;
}
export function runCaptured(req: RunRequest, done: (err: Error | null, result?: RunResult) => void): () => void;
export interface StreamHooks {
  onChunk?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  /** stdin stays open for write() until end() (req.input is then ignored). */
  stdin?: boolean;
}
export interface StreamControls {
  kill(): void;
  /** cb runs once the chunk is in the pipe (or with an error: the command closed its stdin). */
  write(chunk: Uint8Array, cb: (err?: Error | null) => void): void;
  end(): void;
  pause(): void;
  resume(): void;
}
export function runStreaming(
  req: RunRequest,
  hooks: StreamHooks,
  done: (err: Error | null, result?: RunResult) => void,
): StreamControls;
export function startDetached(req: DetachRequest, exited: (how: string) => void): number;
