// Command output crosses JSON (the API, Temporal payloads) as text. Output that is not valid UTF-8
// (binary files, a cut multi-byte character) also travels as base64, so no byte is ever lost.
import { isUtf8 } from 'node:buffer';

export interface OutputFields {
  stdout: string;
  stderr: string;
  /** The exact bytes, present only when stdout is not valid UTF-8 (stdout then shows U+FFFD for them). */
  stdoutBase64?: string;
  stderrBase64?: string;
}

export function outputFields(stdout: Buffer, stderr: Buffer): OutputFields {
  return {
    stdout: stdout.toString('utf8'),
    stderr: stderr.toString('utf8'),
    ...(isUtf8(stdout) ? {} : { stdoutBase64: stdout.toString('base64') }),
    ...(isUtf8(stderr) ? {} : { stderrBase64: stderr.toString('base64') }),
  };
}

/** The exact bytes behind an output field. */
export function outputBytes(text: string, base64?: string): Buffer {
  return base64 !== undefined ? Buffer.from(base64, 'base64') : Buffer.from(text, 'utf8');
}

/**
 * At most `max` bytes, then `marker(dropped)`. Text is cut on a character boundary so that
 * valid UTF-8 stays valid (and is not needlessly sent as base64).
 */
export function capBytes(bytes: Buffer, max: number, marker: (dropped: number) => string): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  if (isUtf8(bytes)) while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end -= 1; // a continuation byte
  return Buffer.concat([bytes.subarray(0, end), Buffer.from(marker(bytes.length - end))]);
}

/** Caps both streams of a result, keeping the text/base64 pair consistent. */
export function capOutput<T extends OutputFields>(result: T, max: number, marker: (dropped: number) => string): T {
  const { stdoutBase64: _o, stderrBase64: _e, ...rest } = result;
  const out = capBytes(outputBytes(result.stdout, result.stdoutBase64), max, marker);
  const err = capBytes(outputBytes(result.stderr, result.stderrBase64), max, marker);
  return { ...rest, ...outputFields(out, err) } as T;
}
