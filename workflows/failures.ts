// Every failure type Hourglass raises (the `type` of an ApplicationFailure, a driver error's code),
// in one place and one casing: the API's error codes are snake_case, and so are these.
// Pure: the workflow, activities, drivers and the API import it.

export const Failure = {
  /** The operation is not allowed in the sandbox's state (API 409 invalid_state). */
  InvalidState: 'invalid_state',
  /** Bad input to an update (API 400 invalid_argument). */
  InvalidArgument: 'invalid_argument',
  /** Not now, maybe later: the run is continuing as new (API 503 busy), a driver's sandbox is locked. */
  Busy: 'busy',
  /** An exec whose worker was lost mid-command: it may have partly run. */
  ExecInterrupted: 'exec_interrupted',
  /** The worker that took the activity lacks the driver; retried, another worker may have it. */
  DriverNotEnabled: 'driver_not_enabled',
  // Driver errors (hypervisors/errors.ts); a create's permanent one becomes the sandbox's errorCode.
  NotFound: 'not_found',
  /** A file path inside a sandbox that does not exist (API 404). */
  PathNotFound: 'path_not_found',
  /** Too many at once of something capped (streamed and background commands in a sandbox): API 429. */
  RateLimited: 'rate_limited',
  /** A file larger than one transfer may carry (API 413). */
  TooLarge: 'too_large',
  BadSpec: 'bad_spec',
  NotReady: 'not_ready',
  IsolationUnavailable: 'isolation_unavailable',
} as const;

export type FailureType = (typeof Failure)[keyof typeof Failure];

/** The types raised before they had one casing: workers not yet upgraded still send them. */
const RENAMED: Readonly<Record<string, FailureType>> = {
  InvalidState: Failure.InvalidState,
  InvalidArgument: Failure.InvalidArgument,
  Busy: Failure.Busy,
  ExecInterrupted: Failure.ExecInterrupted,
  DriverNotEnabled: Failure.DriverNotEnabled,
};

/** A failure's type in today's casing, whichever version of a worker raised it. */
export function failureType(type: string | null | undefined): string | undefined {
  return type ? (RENAMED[type] ?? type) : undefined;
}
