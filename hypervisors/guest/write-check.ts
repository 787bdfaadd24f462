// What an upload may put in a sandbox: permission bits only, and exactly the bytes the caller
// stored. The bytes are counted and hashed as they pass into the temporary file, and checked
// before it is renamed over the target: wrong bytes never replace a file.
import { createHash } from 'node:crypto';
import { BadSpecError } from '../errors';
import { shown } from './sandbox-paths';

/** rwx for all plus the sticky bit: setuid and setgid files are not for agents to make. */
export const MAX_FILE_MODE = 0o1777;

export function checkMode(id: string, mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > MAX_FILE_MODE) {
    const got = Number.isInteger(mode) && mode >= 0 ? mode.toString(8) : String(mode);
    throw new BadSpecError(
      `sandbox ${id}: mode must be octal permission bits 0–1777 (got ${got}); setuid and setgid are refused`,
    );
  }
}

export interface ExpectedBytes {
  size: number;
  sha256: string;
}

export class WriteCheck {
  private readonly hash = createHash('sha256');
  private counted = 0;

  constructor(
    private readonly id: string,
    private readonly path: string,
    private readonly expected?: ExpectedBytes,
  ) {}

  get size(): number {
    return this.counted;
  }

  /** `data` counted and hashed on its way; more than expected stops it at once. */
  async *source(data: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of data) {
      this.counted += chunk.length;
      if (this.expected && this.counted > this.expected.size) {
        throw this.mismatch(`more than ${this.expected.size} bytes`);
      }
      this.hash.update(chunk);
      yield chunk;
    }
  }

  /** After the write, before the rename: `written` is what the transport says reached the file. */
  verify(written: number): void {
    if (written !== this.counted) {
      throw new BadSpecError(
        `sandbox ${this.id}: ${written} of ${this.counted} bytes reached the temporary file for ${shown(this.path)}`,
      );
    }
    if (!this.expected) return;
    const sha256 = this.hash.digest('hex');
    if (this.counted !== this.expected.size || sha256 !== this.expected.sha256) {
      throw this.mismatch(`${this.counted} bytes, sha256 ${sha256}`);
    }
  }

  private mismatch(got: string): BadSpecError {
    const { size, sha256 } = this.expected!;
    return new BadSpecError(
      `sandbox ${this.id}: the bytes for ${shown(this.path)} are not the ones sent (${got}; expected ${size} ` +
        `bytes, sha256 ${sha256}); the file was left as it was`,
    );
  }
}
