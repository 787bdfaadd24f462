// API tokens: each names an owner and a role. Only SHA-256 hashes are kept in memory (or in the
// tokens file), and a presented token is hashed and compared in constant time against every one.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export type Role = 'user' | 'admin';

/** Who is calling: every resource carries its owner; admins see and touch every owner's. */
export interface Principal {
  owner: string;
  role: Role;
}

/** With auth off (no tokens configured), the one local user is an admin. */
export const LOCAL_ADMIN: Principal = { owner: 'local', role: 'admin' };

interface TokenEntry extends Principal {
  hash: Buffer;
}

const OWNER = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const MIN_TOKEN_LENGTH = 16;

export class TokenStore {
  private constructor(private readonly entries: TokenEntry[]) {}

  /** Auth is on when at least one token is configured. */
  get enabled(): boolean {
    return this.entries.length > 0;
  }

  get owners(): { owner: string; role: Role }[] {
    return this.entries.map(({ owner, role }) => ({ owner, role }));
  }

  /** The principal a token names, or undefined. Takes the same time whichever entry matches. */
  authenticate(token: string): Principal | undefined {
    const hash = sha256(token);
    let found: TokenEntry | undefined;
    for (const e of this.entries) if (timingSafeEqual(e.hash, hash) && !found) found = e;
    return found && { owner: found.owner, role: found.role };
  }

  /**
   * HOURGLASS_API_TOKENS (`owner:role:token`, comma- or newline-separated), the same lines in the
   * file named by HOURGLASS_API_TOKENS_FILE, and HOURGLASS_API_TOKEN (one admin token, owner "admin").
   * A token written `sha256:<hex>` is its hash, so the file need not hold secrets.
   */
  static fromEnv(env: NodeJS.ProcessEnv): TokenStore {
    const lines: { text: string; where: string }[] = [];
    const split = (text: string, where: string) =>
      text.split(/[\n,]/).forEach((line, i) => lines.push({ text: line.trim(), where: `${where} entry ${i + 1}` }));
    if (env.HOURGLASS_API_TOKENS) split(env.HOURGLASS_API_TOKENS, 'HOURGLASS_API_TOKENS');
    if (env.HOURGLASS_API_TOKENS_FILE) {
      let text: string;
      try {
        text = readFileSync(env.HOURGLASS_API_TOKENS_FILE, 'utf8');
      } catch (err) {
        throw new Error(
          `HOURGLASS_API_TOKENS_FILE: cannot read ${env.HOURGLASS_API_TOKENS_FILE} (${(err as Error).message})`,
        );
      }
      split(text, env.HOURGLASS_API_TOKENS_FILE);
    }
    const entries = lines.filter((l) => l.text && !l.text.startsWith('#')).map((l) => parseEntry(l.text, l.where));
    if (env.HOURGLASS_API_TOKEN) entries.push(entry('admin', 'admin', env.HOURGLASS_API_TOKEN, 'HOURGLASS_API_TOKEN'));
    const seen = new Set<string>();
    for (const e of entries) {
      const key = e.hash.toString('hex');
      if (seen.has(key)) {
        throw new Error(`the same API token is configured twice (owner ${e.owner}): tokens must be unique`);
      }
      seen.add(key);
    }
    return new TokenStore(entries);
  }

  static of(tokens: { owner: string; role: Role; token: string }[]): TokenStore {
    return new TokenStore(tokens.map((t) => entry(t.owner, t.role, t.token, `token of ${t.owner}`)));
  }
}

function parseEntry(text: string, where: string): TokenEntry {
  const [owner, role, ...rest] = text.split(':');
  const token = rest.join(':'); // a token may itself contain ':' (and sha256:<hex> does)
  if (!owner || !role || !token) throw new Error(`${where}: expected owner:role:token (role user or admin)`);
  return entry(owner, role, token, where);
}

function entry(owner: string, role: string, token: string, where: string): TokenEntry {
  if (!OWNER.test(owner)) throw new Error(`${where}: owner '${owner}' must be 1-64 of [A-Za-z0-9_.@-]`);
  if (role !== 'user' && role !== 'admin') throw new Error(`${where}: role '${role}' must be user or admin`);
  const hashed = /^sha256:([0-9a-f]{64})$/i.exec(token);
  if (hashed) return { owner, role, hash: Buffer.from(hashed[1]!, 'hex') };
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new Error(`${where}: the token of ${owner} is shorter than ${MIN_TOKEN_LENGTH} characters`);
  }
  return { owner, role, hash: sha256(token) };
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
