// The request half of the exec contract, written once: what every driver starts for a request,
// with which environment, until when.
import { BadSpecError } from '../errors';
import type { ExecRequest } from '../types';
import { DEFAULT_EXEC_TIMEOUT_SECONDS, ENV_NAME, GUEST_PATH, viaLaunchScript } from './contract';

export interface ExecPlan {
  /** The command behind the launch script (contract.ts), which answers a missing program. */
  argv: string[];
  /** The command's whole environment: GUEST_PATH, HOME, then the caller's variables. */
  env: Record<string, string>;
  timeoutMs: number;
}

/** Checks a request (BadSpecError: retrying cannot help) and plans it; `home` per contract.ts. */
export function planExec(id: string, req: ExecRequest, home: string): ExecPlan {
  if (req.command.length === 0 || !req.command[0]) throw new BadSpecError(`sandbox ${id}: exec needs a command`);
  const badNames = Object.keys(req.env ?? {}).filter((name) => !ENV_NAME.test(name));
  if (badNames.length > 0) {
    const got = badNames.map((n) => JSON.stringify(n)).join(', ');
    throw new BadSpecError(`sandbox ${id}: env names must match ${ENV_NAME} (got ${got})`);
  }
  const seconds = req.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS;
  if (!(Number.isFinite(seconds) && seconds > 0)) {
    throw new BadSpecError(`sandbox ${id}: timeoutSeconds must be positive (got ${seconds})`);
  }
  return {
    argv: viaLaunchScript(req.command),
    env: { PATH: GUEST_PATH, HOME: home, ...req.env },
    timeoutMs: seconds * 1000,
  };
}
