// The MCP exec tool's pieces: output cut to head + tail at character boundaries, progress throttled.
import { describe, expect, it, vi } from 'vitest';
import { CappedOutput } from '../../mcp/tools/capped-output';
import { progressOf, type ToolExtra } from '../../mcp/tools/progress';

const note = (n: number) => `[${n} cut]`;

describe('CappedOutput', () => {
  it('keeps everything under the limits', () => {
    const o = new CappedOutput(4, 8);
    for (const c of ['ab', 'cdef', 'ghij']) o.push(Buffer.from(c));
    expect(o.total).toBe(10);
    expect(o.omitted).toBe(0);
    expect(o.text(note)).toBe('abcdefghij');
  });

  it('keeps the head and the tail of a long output and says how much it left out', () => {
    const o = new CappedOutput(5, 6);
    const all = Array.from({ length: 1000 }, (_, i) => `${i}\n`).join('');
    for (let i = 0; i < all.length; i += 7) o.push(Buffer.from(all.slice(i, i + 7)));
    expect(o.total).toBe(all.length);
    expect(o.text(note)).toBe(`${all.slice(0, 5)}\n[${all.length - 11} cut]\n${all.slice(-6)}`);
  });

  it('never shows half a character at a cut', () => {
    const o = new CappedOutput(4, 4);
    o.push(Buffer.from('aé✓✓✓bcd✓')); // a(1) é(2) ✓(3)…: the head cut falls inside ✓, the tail's inside ✓
    const text = o.text(note);
    expect(text).not.toContain('\uFFFD');
    expect(text).toBe(`aé\n[${o.omitted} cut]\nd✓`);
  });

  it('with no head, is a rolling tail', () => {
    const o = new CappedOutput(0, 3);
    for (const c of 'abcdefg') o.push(Buffer.from(c));
    expect(o.text(() => '…')).toBe('…\nefg');
  });
});

describe('progressOf', () => {
  const extraWith = (token: string | undefined, sent: unknown[]) =>
    ({
      _meta: token === undefined ? undefined : { progressToken: token },
      sendNotification: async (n: unknown) => void sent.push(n),
    }) as unknown as ToolExtra;

  it('sends nothing without a progressToken', async () => {
    const sent: unknown[] = [];
    const p = progressOf(extraWith(undefined, sent));
    p.report(1, () => 'x');
    await p.finish();
    expect(sent).toEqual([]);
  });

  it('sends at most one per interval, the latest; none at the end (the result carries it)', async () => {
    // Fake clock: the 50 ms throttle is tested by the clock it reads, not by a loaded machine's sleeps.
    vi.useFakeTimers();
    try {
      const sent: { params: { progress: number; message: string } }[] = [];
      const p = progressOf(extraWith('t', sent), 50);
      for (let i = 1; i <= 100; i++) p.report(i, () => `m${i}`);
      await vi.advanceTimersByTimeAsync(49);
      expect(sent.map((n) => n.params.progress)).toEqual([1]); // the rest wait for the interval
      await vi.advanceTimersByTimeAsync(31);
      p.report(101, () => 'm101');
      await p.finish();
      p.report(102, () => 'late');
      await vi.advanceTimersByTimeAsync(80);
      expect(sent.map((n) => n.params.progress)).toEqual([1, 100]);
      expect(sent.map((n) => n.params.message)).toEqual(['m1', 'm100']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps progress growing when news comes with the same value (the same millisecond)', async () => {
    const sent: { params: { progress: number; message: string } }[] = [];
    const p = progressOf(extraWith('t', sent), 0);
    p.report(2, () => 'a');
    p.report(2, () => 'b');
    await p.finish();
    expect(sent.map((n) => [n.params.progress, n.params.message])).toEqual([
      [2, 'a'],
      [2.001, 'b'],
    ]);
  });
});
