// A command's output as a model can take it: the first and the last bytes, the middle cut with a
// note saying how much. Memory stays bounded however much the command prints.
import { trimPartialEnd, trimPartialStart } from './utf8';

export class CappedOutput {
  private head: Buffer[] = [];
  private headBytes = 0;
  private tail: Buffer[] = [];
  private tailBytes = 0;
  /** Every byte seen, kept or not. */
  total = 0;

  constructor(
    /** Bytes kept from the start. */
    private readonly headLimit: number,
    /** Bytes kept from the end. */
    private readonly tailLimit: number,
  ) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.headBytes < this.headLimit) {
      const take = chunk.subarray(0, this.headLimit - this.headBytes);
      this.head.push(take);
      this.headBytes += take.length;
      chunk = chunk.subarray(take.length);
    }
    if (!chunk.length) return;
    this.tail.push(chunk);
    this.tailBytes += chunk.length;
    while (this.tailBytes - (this.tail[0]?.length ?? 0) >= this.tailLimit) {
      this.tailBytes -= this.tail.shift()!.length;
    }
  }

  /** Bytes left out of text(). */
  get omitted(): number {
    return Math.max(0, this.total - this.headLimit - this.tailLimit);
  }

  /** The kept bytes as UTF-8 (invalid sequences shown as U+FFFD), with `note(n)` where n bytes were cut. */
  text(note: (omitted: number) => string): string {
    const head = Buffer.concat(this.head);
    let tail = Buffer.concat(this.tail);
    const omitted = this.omitted;
    if (!omitted) return Buffer.concat([head, tail]).toString('utf8');
    tail = tail.subarray(tail.length - this.tailLimit);
    // Cut at character boundaries: drop the partial characters on either side of the gap.
    const start = head.length ? `${trimPartialEnd(head).toString('utf8')}\n` : '';
    return `${start}${note(omitted)}\n${trimPartialStart(tail).toString('utf8')}`;
  }
}
