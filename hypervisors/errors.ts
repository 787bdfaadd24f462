// Errors drivers throw. Activities turn `permanent` ones into non-retryable Temporal failures.
import { Failure } from '../workflows/failures';

export class HypervisorError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly permanent = false,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The sandbox does not exist (never created, or already destroyed). */
export class NotFoundError extends HypervisorError {
  constructor(id: string, detail = '') {
    super(`sandbox ${id} not found${detail ? `: ${detail}` : ''}`, Failure.NotFound, true);
  }
}

/** A path inside a sandbox that does not exist (API 404). */
export class PathNotFoundError extends HypervisorError {
  constructor(id: string, path: string) {
    super(`sandbox ${id}: no such file or directory: ${path}`, Failure.PathNotFound, true);
  }
}

/** Unknown template or a spec the driver can never satisfy: retrying cannot help. */
export class BadSpecError extends HypervisorError {
  constructor(message: string) {
    super(message, Failure.BadSpec, true);
  }
}

/** The guest did not answer before the deadline. */
export class NotReadyError extends HypervisorError {
  constructor(id: string, timeoutMs: number, detail = '') {
    super(`sandbox ${id} not ready after ${timeoutMs} ms${detail ? `: ${detail}` : ''}`, Failure.NotReady, true);
  }
}

/** The sandbox exists but cannot do this right now (stopped, locked…); may succeed later. */
export class BusyError extends HypervisorError {
  constructor(message: string) {
    super(message, Failure.Busy, false);
  }
}

/**
 * The host cannot confine a sandbox the way this service requires (bubblewrap, slirp4netns or loop
 * mounts missing; a sandbox recorded without isolation on a worker that requires it). Permanent:
 * retrying changes nothing until an operator installs the tool or opts out explicitly.
 */
export class IsolationUnavailableError extends HypervisorError {
  constructor(message: string) {
    super(message, Failure.IsolationUnavailable, true);
  }
}
