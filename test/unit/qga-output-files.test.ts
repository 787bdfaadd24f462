// The output files of a streamed command on the qemu-ga drivers (qemu, libvirt), against a small
// in-memory qemu-ga: the real ones are in the data-plane suites; this pins one race they hit in CI.
import { describe, expect, it } from 'vitest';
import { QgaFiles } from '../../hypervisors/guest/qga-files';

/** qemu-ga's file commands over a map of paths; `onStatus` runs when guest-exec-status is asked. */
function fakeAgent(onStatus: (files: Map<string, Buffer>) => void) {
  const files = new Map<string, Buffer>();
  const handles = new Map<number, { path: string; pos: number }>();
  let next = 1000;
  const command = async (execute: string, args: Record<string, unknown> = {}): Promise<unknown> => {
    switch (execute) {
      case 'guest-file-open': {
        const path = String(args.path);
        if (!files.has(path)) throw new Error(`Failed to open file '${path}': No such file or directory`);
        handles.set(++next, { path, pos: 0 });
        return next;
      }
      case 'guest-file-seek':
        handles.get(Number(args.handle))!.pos = Number(args.offset);
        return { position: args.offset, eof: false };
      case 'guest-file-read': {
        const h = handles.get(Number(args.handle))!;
        const data = files.get(h.path)!.subarray(h.pos, h.pos + Number(args.count));
        h.pos += data.length;
        return { count: data.length, 'buf-b64': data.toString('base64'), eof: h.pos >= files.get(h.path)!.length };
      }
      case 'guest-file-close':
        handles.delete(Number(args.handle));
        return {};
      case 'guest-exec-status':
        onStatus(files);
        return { exited: true, exitcode: 0 };
      default:
        throw new Error(`unexpected ${execute}`);
    }
  };
  return new QgaFiles('sbx-test', command, 4096);
}

describe('qemu-ga output files', () => {
  it('a command that makes its files, writes and exits between the open and the status loses nothing', async () => {
    const agent = fakeAgent((files) => {
      // The whole command ran after our guest-file-open found no file, before the status.
      files.set('/tmp/x.out', Buffer.from('3f1c…-uuid\n'));
      files.set('/tmp/x.err', Buffer.from('warn\n'));
    });
    const outputs = agent.outputs('/tmp/x.out', '/tmp/x.err');
    const poll = await outputs.poll(42, [0, 0], 4096);
    expect(poll.status?.exited).toBe(true);
    expect(poll.chunks.map((c) => c.toString())).toEqual(['3f1c…-uuid\n', 'warn\n']);
    await outputs.close();
  });

  it('files already open: one round, read from the offsets given', async () => {
    let statuses = 0;
    const agent = fakeAgent((files) => {
      statuses++;
      if (statuses === 1) {
        files.set('/tmp/y.out', Buffer.from('line 1\nline 2\n'));
        files.set('/tmp/y.err', Buffer.from(''));
      }
    });
    const outputs = agent.outputs('/tmp/y.out', '/tmp/y.err');
    const first = await outputs.poll(7, [0, 0], 4096);
    expect(first.chunks.map((c) => c.toString())).toEqual(['line 1\nline 2\n', '']);
    const second = await outputs.poll(7, [7, 0], 4096);
    expect(second.chunks.map((c) => c.toString())).toEqual(['line 2\n', '']);
    expect(statuses).toBe(2); // no extra round once both files are open
    await outputs.close();
  });
});
