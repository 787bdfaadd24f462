// The output half of the exec contract, written once: every driver's streams go through here, so
// each is cut at the same size with the same marker.
import { EXEC_OUTPUT_CAP_BYTES, truncationMarker } from './contract';
import { capBytes, outputFields, type OutputFields } from './output';

/** One stream as captured: its bytes, and whether some were already dropped before they reached us. */
export interface CapturedStream {
  bytes: Buffer;
  truncated?: boolean;
}

/** At most EXEC_OUTPUT_CAP_BYTES of each stream, then truncationMarker (also when the capturer cut earlier). */
export function cappedOutput(stdout: CapturedStream, stderr: CapturedStream): OutputFields {
  return outputFields(capStream(stdout), capStream(stderr));
}

function capStream({ bytes, truncated }: CapturedStream): Buffer {
  if (bytes.length > EXEC_OUTPUT_CAP_BYTES) return capBytes(bytes, EXEC_OUTPUT_CAP_BYTES, truncationMarker);
  return truncated ? Buffer.concat([bytes, Buffer.from(truncationMarker(0))]) : bytes;
}
