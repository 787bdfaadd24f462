// The payload encryption keys: HOURGLASS_CODEC_KEY (base64 of 32 bytes; a comma-separated list
// encrypts with the first and still decrypts with the others, for rotation) or the file named by
// HOURGLASS_CODEC_KEY_FILE; else a key generated on first start in the state dir (mode 0600), which
// every API and worker process sharing that state dir uses.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface CodecKeys {
  current: { id: string; key: Buffer };
  byId: Map<string, Buffer>;
  /** Where the keys came from, for the startup banner. */
  source: string;
}

const KEY_BYTES = 32;

export function loadCodecKeys(env: NodeJS.ProcessEnv, stateDir: string): CodecKeys {
  if (env.HOURGLASS_CODEC_KEY) return fromText(env.HOURGLASS_CODEC_KEY, 'HOURGLASS_CODEC_KEY');
  if (env.HOURGLASS_CODEC_KEY_FILE) {
    return fromText(readKeyFile(env.HOURGLASS_CODEC_KEY_FILE), env.HOURGLASS_CODEC_KEY_FILE);
  }
  const file = path.join(stateDir, 'codec.key');
  let textOfFile: string;
  try {
    textOfFile = readKeyFile(file);
  } catch {
    mkdirSync(stateDir, { recursive: true });
    // 'wx': never overwrite a key another process wrote meanwhile (it would orphan its payloads).
    try {
      writeFileSync(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    textOfFile = readKeyFile(file);
  }
  return fromText(textOfFile, file);
}

export function codecKeysOf(base64Keys: string[], source = 'given'): CodecKeys {
  return fromText(base64Keys.join(','), source);
}

function readKeyFile(file: string): string {
  return readFileSync(file, 'utf8');
}

function fromText(textOfKeys: string, source: string): CodecKeys {
  const keys = textOfKeys
    .split(/[,\n]/)
    .map((k) => k.trim())
    .filter(Boolean)
    .map((k, i) => {
      const key = Buffer.from(k, 'base64');
      if (key.length !== KEY_BYTES) {
        throw new Error(
          `${source}: key ${i + 1} is not base64 of ${KEY_BYTES} bytes (make one with: openssl rand -base64 32)`,
        );
      }
      return { id: keyId(key), key };
    });
  if (!keys.length) throw new Error(`${source}: no key found`);
  return { current: keys[0]!, byId: new Map(keys.map((k) => [k.id, k.key])), source };
}

/** A short public name for a key: lets a process say which key a payload needs without revealing it. */
function keyId(key: Buffer): string {
  return createHash('sha256').update('hourglass codec key id\0').update(key).digest('hex').slice(0, 16);
}
