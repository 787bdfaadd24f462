// A reproducible stream of bytes for transfer tests and benches: the same seed, the same bytes,
// made fast (AES-CTR of zeros) and hashed on the way.
import { createCipheriv, createHash } from 'node:crypto';

const MiB = 1024 * 1024;

/** `size` bytes from a seeded stream (AES-CTR of zeros), in 1 MiB chunks, and their sha256 when it ends. */
export function seededBytes(seed: string, size: number): { chunks: AsyncIterable<Buffer>; sha256: () => string } {
  const hash = createHash('sha256');
  let digest: string | undefined;
  async function* chunks() {
    const key = createHash('sha256').update(seed).digest();
    const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    for (let left = size; left > 0; left -= MiB) {
      const chunk = cipher.update(Buffer.alloc(Math.min(MiB, left)));
      hash.update(chunk);
      yield chunk;
    }
    digest = hash.digest('hex');
  }
  return {
    chunks: chunks(),
    sha256: () => {
      if (digest === undefined) throw new Error('the seeded stream was not read to its end');
      return digest;
    },
  };
}
