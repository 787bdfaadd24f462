// The data converter every Temporal client and worker in Hourglass uses: JSON payloads, encrypted.
import type { DataConverter } from '@temporalio/common';
import { EncryptionCodec } from './encryption-codec';
import type { CodecKeys } from './keys';

export function dataConverter(keys: CodecKeys): DataConverter {
  return { payloadCodecs: [new EncryptionCodec(keys)] };
}
