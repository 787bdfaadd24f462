// Request bodies and query strings, validated with zod; errors name the field.
import './openapi/extend-zod';
import { z } from 'zod';
import { MAX_EXEC_TIMEOUT_SECONDS } from '../hypervisors/guest/contract';
import { SANDBOX_STATES } from '../workflows/states';
import { limitsSchema } from './limits';

/** Sandbox, session and owner ids: what the API hands out, nothing that could reach a path or SQL oddly. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
const id = z.string().regex(ID_PATTERN, 'not an id (1-128 of [A-Za-z0-9_.@-])');

const labelKey = z.string().regex(/^[A-Za-z0-9_./-]{1,63}$/, 'label keys are 1-63 of [A-Za-z0-9_./-]');
const labels = z
  .record(labelKey, z.string().max(256))
  .refine((l) => Object.keys(l).length <= 64, 'at most 64 labels')
  .default({})
  // The document cannot read the key schema and the refine: say them (validation is unchanged).
  .openapi({ maxProperties: 64, description: 'At most 64; keys are 1-63 of [A-Za-z0-9_./-], values ≤ 256 characters' });
const seconds = z.number().int('must be a whole number of seconds').positive('must be greater than 0');
/** Longer than anyone should keep a sandbox; keeps every derived date representable. */
const MAX_LIFETIME_SECONDS = 366 * 24 * 3600;

export const createSandboxBody = z
  .object({
    driver: z.string().min(1).optional(),
    template: z.string().min(1).max(128).optional(),
    ttlSeconds: seconds.max(30 * 24 * 3600),
    maxLifetimeSeconds: seconds.max(MAX_LIFETIME_SECONDS).optional(),
    readyTimeoutSeconds: seconds.max(3600).optional(),
    labels,
    limits: limitsSchema.optional(),
    sessionId: id.optional(),
    /** false = return at once (state REQUESTED) instead of waiting until the sandbox is RUNNING. */
    wait: z.boolean().default(true),
  })
  .strict();
export type CreateSandboxBody = z.infer<typeof createSandboxBody>;

/** The kernel's limit on one argv or environment string (MAX_ARG_STRLEN, NUL included). */
const argString = z
  .string()
  .refine((s) => Buffer.byteLength(s) < 128 * 1024, 'must be under 128 KiB (the kernel limit for one argument)');

/** argv: a program name (not empty, not NAME=VALUE), then its arguments. */
const command = z
  .array(argString)
  .min(1, 'must name a program')
  .refine(
    (c) => c[0] !== '' && !c[0]?.includes('='),
    'the program (first element) must be a name, not empty or NAME=VALUE',
  );

/** Standard input travels through workflow history (the update's input): kept small. */
export const MAX_STDIN_BYTES = 256 * 1024;
const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

export const execBody = z
  .object({
    command,
    timeoutSeconds: seconds.max(MAX_EXEC_TIMEOUT_SECONDS).optional(),
    env: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'env names are 1-128 of [A-Za-z_][A-Za-z0-9_]*'),
        argString,
      )
      .optional(),
    /** Server-Sent Events as the output comes (also with `Accept: text/event-stream`). */
    stream: z.boolean().optional(),
    /** 202 with the execId at once; the command runs on (GET /execs/:execId, its output, kill). */
    background: z.boolean().optional(),
    stdin: z.string().optional().openapi({ description: 'Standard input as UTF-8 text (≤ 256 KiB)' }),
    stdinBase64: base64.optional().openapi({ description: 'Standard input as base64 (≤ 256 KiB decoded)' }),
  })
  .strict();

/** execBody with the checks across its fields (a plain object schema stays usable for its shape). */
export const execRequest = execBody
  .refine((b) => !(b.stream && b.background), { message: 'give stream or background, not both', path: ['stream'] })
  .refine((b) => b.stdin === undefined || b.stdinBase64 === undefined, {
    message: 'give stdin or stdinBase64, not both',
    path: ['stdin'],
  })
  .refine((b) => stdinBytes(b) <= MAX_STDIN_BYTES, {
    message: `at most ${MAX_STDIN_BYTES} bytes of standard input`,
    path: ['stdin'],
  });
export type ExecBody = z.infer<typeof execBody>;

function stdinBytes(b: { stdin?: string; stdinBase64?: string }): number {
  if (b.stdin !== undefined) return Buffer.byteLength(b.stdin);
  return b.stdinBase64 === undefined ? 0 : Buffer.from(b.stdinBase64, 'base64').length;
}

export const renewBody = z
  .object({
    ttlSeconds: seconds.max(MAX_LIFETIME_SECONDS),
    /** true = renew by signal: 202 at once, no answer (works with no worker running). */
    async: z.boolean().default(false),
  })
  .strict();

export const destroyBody = z
  .object({
    force: z.boolean().default(false),
    reason: z.string().max(500).optional(),
  })
  .strict()
  .default({});

const labelFilter = z
  .string()
  .regex(/^[^=]+=.*$/, 'label filters look like key=value')
  .transform((s) => {
    const i = s.indexOf('=');
    return [s.slice(0, i), s.slice(i + 1)] as const;
  });

export const listQuery = z.object({
  state: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .transform((v) => (v === undefined ? undefined : (Array.isArray(v) ? v : v.split(',')).filter(Boolean)))
    .pipe(z.array(z.enum(SANDBOX_STATES)).optional()),
  label: z
    .union([labelFilter, z.array(labelFilter)])
    .optional()
    .transform((v) =>
      v === undefined
        ? undefined
        : Object.fromEntries(Array.isArray(v[0]) ? (v as [string, string][]) : [v as [string, string]]),
    ),
  sessionId: id.optional(),
  /** Admins only: one owner's sandboxes (others always see only their own). */
  owner: id.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z.string().optional(),
});

export const bulkDestroyBody = z
  .object({
    ids: z.array(id).max(1000).optional(),
    label: labelFilter.optional(),
    force: z.boolean().default(false),
    reason: z.string().max(500).optional(),
  })
  .strict()
  .refine((b) => b.ids?.length || b.label, { message: 'give ids or label (or both)', path: ['ids'] });

export const pruneBody = z
  .object({
    dryRun: z.boolean().default(false),
    olderThanSeconds: z.number().int().min(0).optional(),
  })
  .strict()
  .default({});

export const createSessionBody = z
  .object({
    heartbeatTimeoutSeconds: seconds.max(7 * 24 * 3600),
  })
  .strict();

export const createJobBody = z
  .object({
    driver: z.string().min(1).optional(),
    template: z.string().min(1).max(128).optional(),
    commands: z.array(command).min(1, 'give at least one command').max(100),
    commandTimeoutSeconds: seconds.max(MAX_EXEC_TIMEOUT_SECONDS).optional(),
    ttlSeconds: seconds.max(30 * 24 * 3600),
    keepalive: z.boolean().default(false),
    labels,
    limits: limitsSchema.optional(),
  })
  .strict();
export type CreateJobBody = z.infer<typeof createJobBody>;
