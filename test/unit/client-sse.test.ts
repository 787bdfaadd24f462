// The client's SSE reading (client/sse.ts) and its resumption after a dropped connection
// (client/follow.ts), on bodies cut wherever a network may cut them.
import { describe, expect, it } from 'vitest';
import { HourglassApiError } from '../../client/errors';
import { followSse } from '../../client/follow';
import { SseParser, readSse, type SseMessage } from '../../client/sse';

const enc = new TextEncoder();

/** A body delivering `pieces`, then ending — or failing, as a dropped connection does. */
function body(pieces: string[], fail = false): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < pieces.length) return c.enqueue(enc.encode(pieces[i++]!));
      if (fail) return c.error(new TypeError('terminated'));
      c.close();
    },
  });
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('SseParser / readSse', () => {
  it('reads fields, comments, multi-line data and every line ending, however the bytes are split', async () => {
    const text = ': ping\r\nretry: 3000\nid: 1\nevent: stdout\ndata: {"a":1}\n\nid: 2\rdata: x\rdata: y\r\r';
    for (let cut = 1; cut < text.length; cut++) {
      const parser = new SseParser();
      const got = await all(readSse(body([text.slice(0, cut), text.slice(cut)]), parser));
      expect(got, `cut at ${cut}`).toEqual([
        { id: '1', event: 'stdout', data: '{"a":1}' },
        { id: '2', event: 'message', data: 'x\ny' },
      ]);
      expect(parser.comments).toBe(1);
      expect(parser.retry).toBe(3000);
    }
  });

  it('never dispatches a message cut off before its blank line', async () => {
    expect(await all(readSse(body(['data: whole\n\ndata: half'])))).toEqual([{ event: 'message', data: 'whole' }]);
    await expect(all(readSse(body(['data: whole\n\ndata: ha'], true))).catch(String)).resolves.toMatch(/terminated/);
  });

  it('keeps multi-byte characters split across chunks whole', async () => {
    const bytes = enc.encode('data: é€😀\n\n');
    const pieces = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    expect(await all(readSse(pieces))).toEqual([{ event: 'message', data: 'é€😀' }]);
  });
});

describe('followSse', () => {
  const sse = (m: { id?: number; event: string; data?: string }) =>
    `${m.id === undefined ? '' : `id: ${m.id}\n`}event: ${m.event}\ndata: ${m.data ?? '{}'}\n\n`;

  it('reopens after a drop with the last id, skips what it already yielded, stops at the last message', async () => {
    const opens: (string | undefined)[] = [];
    const bodies = [
      // Dropped mid-message 3.
      body(
        [sse({ event: 'start' }), sse({ id: 1, event: 'stdout' }), sse({ id: 2, event: 'stdout' }), 'id: 3\nev'],
        true,
      ),
      // The server resends from an older point: 2 must not come twice.
      body([sse({ id: 2, event: 'stdout' }), sse({ id: 3, event: 'stdout' })]), // ends without the last message
      body([sse({ id: 4, event: 'stderr' }), sse({ event: 'exit' }), sse({ id: 5, event: 'stdout' })]),
    ];
    const got = await all(
      followSse({
        isLast: (m) => m.event === 'exit',
        open: async (lastId) => {
          opens.push(lastId);
          return new Response(bodies.shift()!);
        },
      }),
    );
    expect(opens).toEqual([undefined, '2', '3']);
    expect(got.map((m: SseMessage) => `${m.event}:${m.id ?? '-'}`)).toEqual([
      'start:-',
      'stdout:1',
      'stdout:2',
      'stdout:3',
      'stderr:4',
      'exit:-',
    ]);
  });

  it('never retries the first open (it may have started something); retries failed reopens', async () => {
    const refused = new HourglassApiError(0, 'unreachable', 'no answer');
    await expect(
      all(
        followSse({
          isLast: () => false,
          open: () => Promise.reject(refused),
        }),
      ),
    ).rejects.toBe(refused);

    let n = 0;
    const got = await all(
      followSse({
        isLast: (m) => m.event === 'exit',
        open: async () => {
          n++;
          if (n === 1) return new Response(body([sse({ id: 1, event: 'stdout' })], true));
          if (n === 2) throw new HourglassApiError(503, 'unavailable', 'try again');
          return new Response(body([sse({ event: 'exit' })]));
        },
      }),
    );
    expect(n).toBe(3);
    expect(got.map((m) => m.event)).toEqual(['stdout', 'exit']);
  });

  it('gives a 4xx on reopen to the caller, and gives up after repeated drops with stream_interrupted', async () => {
    let n = 0;
    const gone = new HourglassApiError(404, 'not_found', 'exec not found');
    await expect(
      all(
        followSse({
          isLast: () => false,
          open: async () => {
            if (n++ === 0) return new Response(body([], true));
            throw gone;
          },
        }),
      ),
    ).rejects.toBe(gone);

    const err = await all(
      followSse({ isLast: () => false, open: async () => new Response(body([': ping\n'], true)) }),
    ).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 0, code: 'stream_interrupted' });
  }, 20_000);

  it('stops when the caller aborts, with the abort reason', async () => {
    const abort = new AbortController();
    const reason = new Error('enough');
    const pending = all(
      followSse({
        signal: abort.signal,
        isLast: () => false,
        open: async (_id, _reopen, signal) =>
          new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(enc.encode(sse({ id: 1, event: 'stdout' })));
                signal.addEventListener('abort', () => c.error(signal.reason));
              },
            }),
          ),
      }),
    );
    setTimeout(() => abort.abort(reason), 50);
    await expect(pending).rejects.toBe(reason);
  });
});
