// The spawner: a small process that starts host commands for the service (see core.mjs for why).
// It lives as long as its parent: when the IPC channel closes, it exits. Commands it started keep
// running in their own process groups, as they would have with the service.
import { runStreaming, startDetached } from './core.mjs';

/** Per running command: its controls (kill, stdin, flow). */
const running = new Map();
const send = (msg) => process.connected && process.send(msg);

process.on('message', (msg) => {
  if (msg.op === 'run') {
    // A streaming run sends its output as it comes, before its result (one channel: in order).
    const hooks = msg.stream
      ? { onChunk: (stream, chunk) => send({ id: msg.id, stream, chunk }), stdin: Boolean(msg.stdin) }
      : {};
    const controls = runStreaming(msg.req, hooks, (err, result) => {
      running.delete(msg.id);
      send(err ? { id: msg.id, error: err.message, code: err.code } : { id: msg.id, result });
    });
    running.set(msg.id, controls);
  } else if (msg.op === 'kill') {
    running.get(msg.id)?.kill();
  } else if (msg.op === 'stdin') {
    // Acknowledged once in the pipe: the service sends the next chunk only then (backpressure).
    const controls = running.get(msg.id);
    if (!controls) send({ id: msg.id, ack: 'closed' });
    else controls.write(msg.data, (err) => send({ id: msg.id, ack: err ? 'closed' : 'ok' }));
  } else if (msg.op === 'stdin-end') {
    running.get(msg.id)?.end();
  } else if (msg.op === 'pause') {
    running.get(msg.id)?.pause();
  } else if (msg.op === 'resume') {
    running.get(msg.id)?.resume();
  } else if (msg.op === 'detach') {
    try {
      const pid = startDetached(msg.req, (how) => send({ id: msg.id, exited: how }));
      send({ id: msg.id, pid });
    } catch (err) {
      send({ id: msg.id, error: err.message, code: err.code });
    }
  }
});
process.on('disconnect', () => process.exit(0));
