// A byte sink with a ceiling, for reads out of a sandbox whose size the sandbox decides (a file
// still growing, a sparse one, a huge listing): past the ceiling nothing more is handed on, and
// the error thrown stops the transport reading the rest.
import { HypervisorError } from '../errors';
import { Failure } from '../../workflows/failures';

/** More bytes than the reader may take (API 413 too_large); reading again cannot help. */
export class TooLargeError extends HypervisorError {
  constructor(message: string) {
    super(message, Failure.TooLarge, true);
  }
}

export class CappedSink {
  private total = 0;
  private refused: Error | undefined;

  constructor(
    private readonly inner: (chunk: Buffer) => Promise<void>,
    private readonly maxBytes: number,
    private readonly tooLarge: () => Error,
  ) {}

  readonly push = async (chunk: Buffer): Promise<void> => {
    this.total += chunk.length;
    if (this.total > this.maxBytes) {
      this.refused ??= this.tooLarge();
      throw this.refused;
    }
    await this.inner(chunk);
  };

  /** What a failed read really was: past the cap, whatever the transport made of the sink's error. */
  cause(err: unknown): unknown {
    return this.refused ?? err;
  }
}
