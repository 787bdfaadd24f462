// zod types for environment variables: every value arrives as text (or not at all), and a bad one
// must stop start-up with the variable's name and what it should have been.
import { z } from 'zod';

/** Unset or empty → fallback; else an integer ≥ min. */
export function intVar(fallback: number, min = 0) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      const n = Number(raw);
      if (Number.isInteger(n) && n >= min) return n;
      const want = min === 0 ? 'a non-negative integer' : min === 1 ? 'a positive integer' : `an integer ≥ ${min}`;
      ctx.addIssue({ code: 'custom', message: `must be ${want} (got '${raw}')` });
      return z.NEVER;
    });
}

/** Unset or empty → undefined; else a finite number > 0. */
export const positiveNumberVar = z
  .string()
  .optional()
  .transform((raw, ctx) => {
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (Number.isFinite(n) && n > 0) return n;
    ctx.addIssue({ code: 'custom', message: `must be a positive number (got '${raw}')` });
    return z.NEVER;
  });

/** Unset or empty → fallback. */
export const textVar = (fallback: string) =>
  z
    .string()
    .optional()
    .transform((raw) => raw?.trim() || fallback);

/** Unset or empty → undefined. */
export const optionalTextVar = z
  .string()
  .optional()
  .transform((raw) => raw?.trim() || undefined);

/** One of `values`; unset or empty → fallback. */
export function oneOfVar<const T extends string>(values: readonly T[], fallback: T) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      if ((values as readonly string[]).includes(raw)) return raw as T;
      ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')} (got '${raw}')` });
      return z.NEVER;
    });
}

/** `0`/`1` (also true/false, yes/no); unset or empty → fallback. */
export function flagVar(fallback: boolean) {
  return z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (raw === undefined || raw === '') return fallback;
      if (/^(1|true|yes)$/i.test(raw)) return true;
      if (/^(0|false|no)$/i.test(raw)) return false;
      ctx.addIssue({ code: 'custom', message: `must be 0 or 1 (got '${raw}')` });
      return z.NEVER;
    });
}

/** Comma-separated; unset or empty → []. */
export const listVar = z
  .string()
  .optional()
  .transform((raw) =>
    (raw ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );

/** Parses env with schema; every problem in one error, each line naming its variable. */
export function parseEnv<S extends z.ZodTypeAny>(schema: S, env: NodeJS.ProcessEnv): z.output<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => (i.path.length ? `${i.path.join('.')} ${i.message}` : i.message));
  throw new Error(lines.join('; '));
}
