// Reading driver settings from the environment.
import { BadSpecError } from '../errors';

/** env[key] as a positive integer; unset or empty = fallback. A bad value is a BadSpecError. */
export function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new BadSpecError(`${key} must be a positive integer, not ${raw}`);
  return n;
}
