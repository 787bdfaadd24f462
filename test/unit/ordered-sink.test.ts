// OrderedSink (hypervisors/common/ordered-sink.ts): order kept, the producer held back while the
// sink is behind and let go once it caught up, a failing sink stops everything after it.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { OrderedSink } from '../../hypervisors/common/ordered-sink';

const MiB = 1024 * 1024;

describe('OrderedSink', () => {
  it('hands chunks over one at a time, in order, and counts them', async () => {
    const seen: number[] = [];
    let busy = false;
    const sink = new OrderedSink(
      async (c) => {
        expect(busy).toBe(false); // never two at once
        busy = true;
        await sleep(1);
        seen.push(c[0]!);
        busy = false;
      },
      () => undefined,
    );
    for (let i = 0; i < 50; i++) sink.push(Buffer.from([i, 0]));
    await sink.done();
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(sink.size).toBe(100);
  });

  it('pauses the producer past 4 MiB waiting and resumes it below 1 MiB', async () => {
    const calls: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sink = new OrderedSink(
      async () => gate,
      () => undefined,
    );
    sink.attach({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    for (let i = 0; i < 6; i++) sink.push(Buffer.alloc(MiB));
    expect(calls).toEqual(['pause']);
    release();
    await sink.done();
    expect(calls).toEqual(['pause', 'resume']);
  });

  it('tells a producer attached late that it must hold back', () => {
    const sink = new OrderedSink(
      () => new Promise(() => undefined),
      () => undefined,
    );
    for (let i = 0; i < 6; i++) sink.push(Buffer.alloc(MiB));
    const calls: string[] = [];
    sink.attach({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    expect(calls).toEqual(['pause']);
  });

  it('stops at the first failure: reported once, later chunks dropped, the producer let go', async () => {
    const errors: unknown[] = [];
    const calls: string[] = [];
    let n = 0;
    const sink = new OrderedSink(
      async () => {
        if (++n === 2) throw new Error('reader gone');
      },
      (err) => errors.push(err),
    );
    sink.attach({ pause: () => calls.push('pause'), resume: () => calls.push('resume') });
    for (let i = 0; i < 6; i++) sink.push(Buffer.alloc(MiB));
    await expect(sink.done()).rejects.toThrow('reader gone');
    sink.push(Buffer.alloc(1));
    await expect(sink.done()).rejects.toThrow('reader gone');
    expect(n).toBe(2);
    expect(errors).toHaveLength(1);
    expect(calls).toEqual(['pause', 'resume']);
  });
});
