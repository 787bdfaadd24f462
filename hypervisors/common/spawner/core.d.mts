export interface RunRequest {
  file: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
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
export function startDetached(req: DetachRequest, exited: (how: string) => void): number;
