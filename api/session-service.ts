// Sessions over the Temporal client: each is a `session:<id>` workflow.
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { endSessionSignal, getSessionStatus, sessionHeartbeatSignal, type SessionStatus } from '../workflows/messages';
import { sessionWorkflow } from '../workflows/session';
import { ApiError, fromTemporal, notFound } from './errors';

export class SessionService {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async create(heartbeatTimeoutSeconds: number): Promise<SessionStatus> {
    const id = `ses-${randomBytes(8).toString('hex')}`;
    await this.client.workflow.start(sessionWorkflow, {
      workflowId: `session:${id}`,
      taskQueue: this.taskQueue,
      args: [{ id, heartbeatTimeoutSeconds }],
      staticSummary: `session ${id} (heartbeat every < ${heartbeatTimeoutSeconds}s)`,
    });
    return {
      id,
      state: 'ACTIVE',
      heartbeatTimeoutSeconds,
      deadline: new Date(Date.now() + heartbeatTimeoutSeconds * 1000).toISOString(),
      sandboxes: [],
    };
  }

  async get(id: string): Promise<SessionStatus> {
    const handle = this.client.workflow.getHandle(`session:${id}`);
    try {
      const d = await handle.describe();
      if (d.status.name === 'RUNNING' || d.status.name === 'COMPLETED') {
        return await this.client.withDeadline(Date.now() + 5000, () => handle.query(getSessionStatus));
      }
      // Terminated/failed: no code ran at the end; the reaper destroys its sandboxes.
      return { id, state: 'ENDED', heartbeatTimeoutSeconds: 0, deadline: (d.closeTime ?? new Date()).toISOString(), sandboxes: [], endReason: `session ${d.status.name.toLowerCase()}` };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`session ${id}`);
      throw fromTemporal(err) ?? err;
    }
  }

  async heartbeat(id: string): Promise<SessionStatus> {
    await this.requireActive(id);
    await this.client.workflow.getHandle(`session:${id}`).signal(sessionHeartbeatSignal);
    return this.get(id);
  }

  async end(id: string, reason?: string): Promise<SessionStatus> {
    await this.requireActive(id);
    await this.client.workflow.getHandle(`session:${id}`).signal(endSessionSignal, { reason });
    return { ...(await this.get(id)), state: 'ENDED' };
  }

  private async requireActive(id: string): Promise<void> {
    const s = await this.get(id);
    if (s.state !== 'ACTIVE') {
      throw new ApiError(409, 'invalid_state', `session ${id} is ENDED (${s.endReason ?? 'ended'}); valid states: ACTIVE`, { state: s.state });
    }
  }
}
