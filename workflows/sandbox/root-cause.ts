// What went wrong at the bottom of a chain of failures (an activity failure wraps the driver's).
import { ApplicationFailure } from '@temporalio/workflow';

/** The innermost message: the driver's words, not "Activity task failed". */
export function rootMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** The innermost application failure type (e.g. bad_spec), if any. */
export function rootType(err: unknown): string | undefined {
  let e: unknown = err;
  let type: string | undefined;
  while (e instanceof Error) {
    if (e instanceof ApplicationFailure && e.type) type = e.type;
    e = e.cause;
  }
  return type;
}
