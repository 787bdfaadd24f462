// What a failed call throws: the API's error envelope {error:{code,message,details}} as one class.

export class HourglassApiError extends Error {
  override readonly name = 'HourglassApiError';

  constructor(
    /** The HTTP status; 0 when no answer came (the API could not be reached). */
    readonly status: number,
    /** The API's stable code (invalid_argument, not_found, invalid_state …); `unreachable` for status 0. */
    readonly code: string,
    message: string,
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** The envelope as the API sent it (what `--json` prints). */
  toJSON(): { error: { code: string; message: string; details?: unknown } } {
    const { code, message, details } = this;
    return { error: { code, message, ...(details !== undefined ? { details } : {}) } };
  }
}

/** Reads a refusal's envelope; an answer without one (a proxy's HTML page) still names its status. */
export async function errorFromResponse(res: Response): Promise<HourglassApiError> {
  const text = await res.text().catch(() => '');
  let parsed: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  const e = parsed?.error;
  if (e && typeof e.code === 'string' && typeof e.message === 'string') {
    return new HourglassApiError(res.status, e.code, e.message, e.details);
  }
  const snippet = text.slice(0, 200).trim();
  return new HourglassApiError(res.status, 'http_error', `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`);
}

/** fetch itself failed: no answer at all. */
export function unreachable(baseUrl: string, err: unknown): HourglassApiError {
  const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
  return new HourglassApiError(0, 'unreachable', `cannot reach the Hourglass API at ${baseUrl} (${why})`, undefined, {
    cause: err,
  });
}
