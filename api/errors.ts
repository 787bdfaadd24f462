// JSON errors: { "error": { "code", "message", "details" } }, and the mapping from Temporal/zod errors.
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  isGrpcDeadlineError,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { ZodError } from 'zod';
import { logger } from '../log/logger';
import { InvalidCursorError } from '../registry/list-cursor';
import { Failure, failureType } from '../workflows/failures';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Seconds a client should wait before trying again (sent as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, 'not_found', `${what} not found`);

/** Maps what a Temporal call threw to an ApiError (or undefined when it is a real server fault). */
export function fromTemporal(err: unknown): ApiError | undefined {
  if (err instanceof WorkflowNotFoundError) return new ApiError(404, 'not_found', err.message);
  if (err instanceof WorkflowExecutionAlreadyStartedError) return new ApiError(409, 'already_exists', err.message);
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) {
    const cause = err.cause;
    const details = cause.details?.[0];
    const type = failureType(cause.type); // a worker not yet upgraded sends the old casing
    if (type === Failure.InvalidState) return new ApiError(409, 'invalid_state', cause.message, details);
    if (type === Failure.InvalidArgument) return new ApiError(400, 'invalid_argument', cause.message, details);
    if (type === Failure.Busy) return new ApiError(503, 'busy', cause.message, details);
    if (type === Failure.RateLimited) return new ApiError(429, 'rate_limited', cause.message, details);
    // The data plane's file operations: a path that escapes the workspace, or one that is not there.
    if (type === Failure.BadSpec) return new ApiError(400, 'invalid_argument', cause.message, details);
    if (type === Failure.PathNotFound) return new ApiError(404, 'path_not_found', cause.message, details);
    // A download past what one transfer may carry (the worker stops copying at the cap).
    if (type === Failure.TooLarge) return new ApiError(413, 'too_large', cause.message, details);
  }
  if (err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError) {
    return new ApiError(502, 'operation_failed', rootMessage(err));
  }
  const deadline = isGrpcDeadlineError(err) || isGrpcDeadlineError((err as Error)?.cause);
  if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || deadline) {
    const message = 'no worker answered in time; the request may still complete (is a worker running?)';
    return new ApiError(504, 'timeout', message);
  }
  return undefined;
}

export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export const notFoundRoute: RequestHandler = (req, _res, next) =>
  next(new ApiError(404, 'not_found', `no route for ${req.method} ${req.path}`));

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const apiError = toApiError(err);
  if (apiError.status >= 500) {
    // The request's own log line (api/request-log.ts) carries the error and its stack.
    res.err = err instanceof Error ? err : new Error(String(err));
    if (!req.log) logger.error({ err: res.err }, `${req.method} ${req.path} failed`);
  }
  if (apiError.retryAfterSeconds !== undefined) res.set('Retry-After', String(apiError.retryAfterSeconds));
  const { code, message, details } = apiError;
  res.status(apiError.status).json({ error: { code, message, ...(details !== undefined ? { details } : {}) } });
};

/** Any error as the API answers it (also inside a stream whose headers are sent: its `error` event). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ZodError) {
    const first = err.issues[0];
    const field = first?.path.join('.') || 'body';
    return new ApiError(400, 'invalid_argument', `${field}: ${first?.message ?? 'invalid'}`, { issues: err.issues });
  }
  if (err instanceof InvalidCursorError) return new ApiError(400, 'invalid_argument', err.message);
  // express.json() parse failures carry status 400 and type 'entity.parse.failed'.
  const e = err as { type?: string; status?: number; message?: string; expose?: boolean };
  if (e?.type === 'entity.parse.failed') {
    return new ApiError(400, 'invalid_json', `request body is not valid JSON: ${e.message}`);
  }
  if (e?.type === 'entity.too.large') return new ApiError(413, 'too_large', 'request body is too large');
  // express's own client errors: a path with bad percent-encoding (URIError), an unsupported
  // charset or content encoding, an aborted body… The client's fault, never a 500.
  if (err instanceof URIError) return new ApiError(400, 'invalid_argument', 'the path has invalid percent-encoding');
  if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
    const why = e.expose && e.message ? e.message : 'the request could not be read';
    return new ApiError(400, 'invalid_argument', `bad request: ${why}`);
  }
  return fromTemporal(err) ?? new ApiError(500, 'internal', 'internal error; see the server log');
}
