// Secrets Hourglass must keep but never store in clear (webhook signing secrets): sealed with the
// codec key (AES-256-GCM, as Temporal payloads are), so every API and worker process can open them
// and a dump of the registry cannot. The record's id is bound in as associated data: a sealed
// secret copied onto another row does not open there.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { CodecKeys } from './keys';

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedSecret {
  keyId: string;
  sealed: Buffer;
}

export function sealSecret(keys: CodecKeys, boundTo: string, secret: string): SealedSecret {
  const { id, key } = keys.current;
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(CIPHER, key, iv);
  cipher.setAAD(Buffer.from(boundTo, 'utf8'));
  const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return { keyId: id, sealed: Buffer.concat([iv, body, cipher.getAuthTag()]) };
}

export function openSecret(keys: CodecKeys, boundTo: string, s: SealedSecret): string {
  const key = keys.byId.get(s.keyId);
  if (!key) {
    throw new Error(
      `secret sealed with key ${s.keyId}, which this process does not have (list old keys after the current one ` +
        'in HOURGLASS_CODEC_KEY)',
    );
  }
  if (s.sealed.length < IV_BYTES + TAG_BYTES) throw new Error(`sealed secret too short (${s.sealed.length} bytes)`);
  const decipher = createDecipheriv(CIPHER, key, s.sealed.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(Buffer.from(boundTo, 'utf8'));
  decipher.setAuthTag(s.sealed.subarray(s.sealed.length - TAG_BYTES));
  const plain = decipher.update(s.sealed.subarray(IV_BYTES, s.sealed.length - TAG_BYTES));
  return Buffer.concat([plain, decipher.final()]).toString('utf8');
}
