// The qemu driver's guest-agent connections, one shared per sandbox within this worker.
//
// The agent's port serves one client at a time, so concurrent execs in this worker share one
// connection. It stays open for idleMs after the last use: after each host disconnect qemu-ga
// naps 100 ms (its guard against spinning on virtio-serial), which would otherwise add ~50 ms to
// every exec. Closed when idle so another worker can connect.
import { HypervisorError } from '../errors';
import { errorText } from '../common/error-text';
import { QgaClient } from './qga';

interface AgentConnection {
  client: Promise<QgaClient>;
  users: number;
  idleTimer?: NodeJS.Timeout;
}

export class AgentPool {
  private readonly agents = new Map<string, AgentConnection>();

  constructor(
    private readonly socketPath: (id: string) => string,
    private readonly idleMs: number,
  ) {}

  has(id: string): boolean {
    return this.agents.has(id);
  }

  async use<T>(id: string, fn: (agent: QgaClient) => Promise<T>): Promise<T> {
    let entry = this.agents.get(id);
    if (entry && entry.users === 0 && (await entry.client.catch(() => null))?.closed !== false) {
      this.drop(id, entry); // QEMU went away or the connection failed while idle
      entry = undefined;
    }
    if (!entry) {
      const client = QgaClient.connect(this.socketPath(id), { timeoutMs: 5_000 }).then(async (c) => {
        await c.sync({ timeoutMs: 5_000 }).catch((err: unknown) => (c.close(), Promise.reject(err)));
        return c;
      });
      client.catch(() => undefined); // awaited below; keeps an early failure from being "unhandled"
      entry = { client, users: 0 };
      this.agents.set(id, entry);
    }
    const shared = entry;
    clearTimeout(shared.idleTimer);
    shared.users++;
    try {
      return await fn(await shared.client);
    } catch (err) {
      // The caller's own verdict on an answer (a path not found): the connection is still in step.
      if (err instanceof HypervisorError) throw err;
      // A failed request leaves the connection closed or out of step: later callers get a new one.
      if (this.agents.get(id) === shared) this.agents.delete(id);
      if (err instanceof Error && err.name === 'AbortError') throw err;
      throw new HypervisorError(`sandbox ${id}: guest agent: ${errorText(err)}`, 'agent_error');
    } finally {
      shared.users--;
      if (shared.users === 0) {
        if (this.agents.get(id) !== shared) {
          shared.client.then(
            (c) => c.close(),
            () => undefined,
          );
        } else {
          shared.idleTimer = setTimeout(() => this.drop(id, shared), this.idleMs);
          shared.idleTimer.unref(); // an idle connection must not keep the worker alive
        }
      }
    }
  }

  /** Keeps a synced connection as the idle shared one, unless one is already there. */
  adopt(id: string, client: QgaClient): void {
    if (this.agents.has(id)) return client.close();
    const entry: AgentConnection = { client: Promise.resolve(client), users: 0 };
    entry.idleTimer = setTimeout(() => this.drop(id, entry), this.idleMs);
    entry.idleTimer.unref();
    this.agents.set(id, entry);
  }

  /** Closes the sandbox's connection, if there is one. */
  close(id: string): void {
    const entry = this.agents.get(id);
    if (entry) this.drop(id, entry);
  }

  closeAll(): void {
    for (const [id, entry] of this.agents) this.drop(id, entry);
  }

  private drop(id: string, entry: AgentConnection): void {
    clearTimeout(entry.idleTimer);
    if (this.agents.get(id) === entry) this.agents.delete(id);
    entry.client.then(
      (c) => c.close(),
      () => undefined,
    );
  }
}
