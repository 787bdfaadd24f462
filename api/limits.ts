// Resource limits a create may ask for: per-template defaults, then the request's own values,
// each checked against the operator's maximum. Unset fields are left to the driver's defaults.
import { z } from 'zod';
import type { SandboxLimits } from '../hypervisors/types';
import { ApiError } from './errors';

export type LimitName = keyof SandboxLimits;

export interface LimitsPolicy {
  max: Required<SandboxLimits>;
  /** Defaults per template name (HOURGLASS_TEMPLATE_LIMITS). */
  templates: Record<string, SandboxLimits>;
}

const MAX_ENV: Record<LimitName, [string, number]> = {
  cpus: ['HOURGLASS_MAX_CPUS', 8],
  memoryMiB: ['HOURGLASS_MAX_MEMORY_MIB', 16_384],
  pids: ['HOURGLASS_MAX_PIDS', 1024],
  tmpMiB: ['HOURGLASS_MAX_TMP_MIB', 4096],
  diskMiB: ['HOURGLASS_MAX_DISK_MIB', 65_536],
};

export const limitsSchema = z
  .object({
    cpus: z.number().min(0.01, 'must be at least 0.01').max(1024).optional(),
    memoryMiB: z
      .number()
      .int()
      .positive('must be greater than 0')
      .max(16 * 1024 * 1024)
      .optional(),
    pids: z.number().int().positive('must be greater than 0').max(4_194_304).optional(),
    tmpMiB: z
      .number()
      .int()
      .positive('must be greater than 0')
      .max(16 * 1024 * 1024)
      .optional(),
    diskMiB: z
      .number()
      .int()
      .positive('must be greater than 0')
      .max(64 * 1024 * 1024)
      .optional(),
  })
  .strict();

export function limitsPolicyFromEnv(env: NodeJS.ProcessEnv): LimitsPolicy {
  const max = {} as Required<SandboxLimits>;
  for (const [name, [variable, fallback]] of Object.entries(MAX_ENV) as [LimitName, [string, number]][]) {
    const raw = env[variable];
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!(value > 0) || !Number.isFinite(value)) {
      throw new Error(`${variable} must be a positive number (got '${raw}')`);
    }
    max[name] = value;
  }
  let templates: Record<string, SandboxLimits> = {};
  if (env.HOURGLASS_TEMPLATE_LIMITS) {
    try {
      templates = z.record(z.string(), limitsSchema).parse(JSON.parse(env.HOURGLASS_TEMPLATE_LIMITS));
    } catch (err) {
      throw new Error(
        `HOURGLASS_TEMPLATE_LIMITS must be JSON like {"big":{"memoryMiB":4096,"cpus":2}} (${(err as Error).message})`,
      );
    }
  }
  return { max, templates };
}

/** The template's defaults overlaid with the request's values; 400 naming the field past a maximum. */
export function resolveLimits(
  policy: LimitsPolicy,
  template: string | undefined,
  requested: SandboxLimits = {},
): SandboxLimits | undefined {
  const limits: SandboxLimits = {
    ...(template ? policy.templates[template] : undefined),
    ...stripUndefined(requested),
  };
  for (const [name, value] of Object.entries(limits) as [LimitName, number][]) {
    if (value > policy.max[name]) {
      throw new ApiError(
        400,
        'invalid_argument',
        `limits.${name}: ${value} exceeds the operator maximum ${policy.max[name]} (${MAX_ENV[name][0]})`,
        {
          field: `limits.${name}`,
          max: policy.max[name],
        },
      );
    }
  }
  return Object.keys(limits).length ? limits : undefined;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
