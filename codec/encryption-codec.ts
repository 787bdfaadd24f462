// Every payload Hourglass sends to Temporal (workflow inputs, exec commands and their env, outputs,
// memos, summaries) is encrypted with AES-256-GCM, so history on the server — `temporal.db`, the
// Web UI, `temporal workflow show` — holds no secret in the clear. Search attributes stay readable.
// Payloads written before encryption was on (no `binary/encrypted` encoding) decode as they are.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ValueError, type Payload, type PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import type { CodecKeys } from './keys';

// @temporalio/proto is CommonJS whose named exports Node's ESM loader cannot see: take the default.
const { Payload: PayloadProto } = proto.temporal.api.common.v1;
const ENCODING = 'binary/encrypted';
const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();
const text = new TextDecoder();

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keys: CodecKeys) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const { id, key } = this.keys.current;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv(CIPHER, key, iv);
      const plain = PayloadProto.encode(payload).finish();
      const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: utf8.encode(ENCODING), 'encryption-key-id': utf8.encode(id) },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      if (!payload.metadata || text.decode(payload.metadata.encoding) !== ENCODING) return payload;
      const keyId = text.decode(payload.metadata['encryption-key-id']);
      const key = this.keys.byId.get(keyId);
      if (!key) {
        throw new ValueError(
          `payload encrypted with key ${keyId}, which this process does not have: every API and worker process ` +
            'needs the same HOURGLASS_CODEC_KEY (old keys listed after the current one)',
        );
      }
      const sealed = Buffer.from(payload.data ?? new Uint8Array());
      if (sealed.length < IV_BYTES + TAG_BYTES) {
        throw new ValueError(`encrypted payload too short (${sealed.length} bytes)`);
      }
      // A full-length tag only: a truncated one would be easier to forge.
      const decipher = createDecipheriv(CIPHER, key, sealed.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return PayloadProto.decode(plain);
    });
  }
}
