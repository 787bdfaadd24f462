// Pieces every route group's paths share: the error envelope and what each status means here,
// the :id parameter, the Idempotency-Key header, and the security of public routes.
import './extend-zod';
import type { ResponseConfig } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ID_PATTERN } from '../schemas';

/** The house error envelope (api/errors.ts errorHandler). */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().openapi({ description: 'Stable machine-readable code, e.g. invalid_argument, not_found' }),
      message: z.string().openapi({ description: 'What went wrong, for people; names the field when one is at fault' }),
      details: z.unknown().optional().openapi({ description: 'Structured context (zod issues, current state …)' }),
    }),
  })
  .openapi('Error');

/** What each error status means on this API (the codes api/errors.ts and the services produce). */
const ERROR_MEANINGS = {
  400: 'invalid_argument (a field, query parameter, id or header is wrong; the message names it) or invalid_json',
  401: 'unauthorized: missing or wrong bearer token',
  403:
    'forbidden: the route needs an admin token, or auth is off and the request was not addressed to loopback ' +
    '(or came from a non-loopback web page)',
  404: 'not_found: no such resource for this owner (other owners’ resources do not exist to you)',
  409: 'invalid_state (the resource’s state does not allow this) or already_exists',
  413: 'too_large: the request body is over the limit (1 MB; 16 MB for the codec endpoint)',
  422: 'idempotency_conflict: the Idempotency-Key was already used with a different request body',
  429:
    'quota_exceeded (the owner has too many live sandboxes or webhooks) or overloaded (too many creates in flight; ' +
    'see Retry-After)',
  500: 'internal: a server fault; see the server log',
  502: 'operation_failed: the workflow ran the operation and it failed',
  503: 'unavailable (the driver cannot isolate sandboxes on this host) or busy (the sandbox is busy; retry)',
  504: 'timeout: no worker answered in time; the request may still complete',
} as const;
export type ErrorStatus = keyof typeof ERROR_MEANINGS;

const retryAfter = z.object({
  'Retry-After': z.string().optional().openapi({ description: 'Seconds to wait before trying again' }),
});

/** Error responses for the given statuses, plus 500, all with the house envelope. */
export function errorResponses(...statuses: ErrorStatus[]): Record<string, ResponseConfig> {
  const all = [...new Set<ErrorStatus>([...statuses, 500])].sort();
  return Object.fromEntries(
    all.map((status) => [
      String(status),
      {
        description: ERROR_MEANINGS[status],
        ...(status === 429 || status === 503 ? { headers: retryAfter } : {}),
        content: { 'application/json': { schema: ErrorEnvelope } },
      },
    ]),
  );
}

/**
 * The errors any authenticated route can give before its handler runs: 400 from input hygiene
 * (bad charset, NUL or lone surrogates, bad percent-encoding, a malformed :id), 401, 403.
 */
export const authErrors = (...more: ErrorStatus[]) => errorResponses(400, 401, 403, ...more);

/** `{id}` in a path: sandbox, session and job ids share one pattern (api/request-params.ts checkIdParam). */
export const idParams = (what: string) =>
  z.object({
    id: z
      .string()
      .regex(ID_PATTERN)
      .openapi({ param: { description: `The ${what} id` }, example: `${what === 'session' ? 'ses' : 'sbx'}-1a2b3c4d` }),
  });

/** Idempotency-Key (api/request-params.ts idempotencyKey): 1-200 characters. */
export const idempotencyKeyHeader = (effect: string) =>
  z.object({
    'Idempotency-Key': z
      .string()
      .min(1)
      .max(200)
      .optional()
      .openapi({ param: { description: effect } }),
  });

/** `security` of a route that needs no token. */
export const PUBLIC: [] = [];

export const json = <T extends z.ZodTypeAny>(schema: T) => ({ 'application/json': { schema } });

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Returns the schema; a compile error when its type is not exactly T (the document cannot drift from the code). */
export const shapeOf =
  <T>() =>
  <S extends z.ZodTypeAny>(schema: S & (Same<z.infer<S>, T> extends true ? unknown : never)): S =>
    schema;
