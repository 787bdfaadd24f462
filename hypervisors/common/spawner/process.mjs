// The spawner: a small process that starts host commands for the service (see core.mjs for why).
// It lives as long as its parent: when the IPC channel closes, it exits. Commands it started keep
// running in their own process groups, as they would have with the service.
import { runCaptured, startDetached } from './core.mjs';

const kills = new Map();
const send = (msg) => process.connected && process.send(msg);

process.on('message', (msg) => {
  if (msg.op === 'run') {
    const kill = runCaptured(msg.req, (err, result) => {
      kills.delete(msg.id);
      send(err ? { id: msg.id, error: err.message, code: err.code } : { id: msg.id, result });
    });
    kills.set(msg.id, kill);
  } else if (msg.op === 'kill') {
    kills.get(msg.id)?.();
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
