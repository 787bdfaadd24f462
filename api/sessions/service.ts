// Sessions over the Temporal client: each is a `session:<id>` workflow owned by the token's owner.
import { randomBytes } from 'node:crypto';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { sessionWorkflowId } from '../../workflows/ids';
import {
  endSessionSignal,
  getSessionStatus,
  sessionHeartbeatSignal,
  type SessionStatus,
} from '../../workflows/messages';
import { SandboxOwner } from '../../workflows/search-attributes';
import { sessionWorkflow } from '../../workflows/session';
import { sessionSummary } from '../../workflows/summaries';
import { ApiError, fromTemporal, notFound } from '../errors';
import type { Principal } from '../tokens';

export class SessionService {
  constructor(
    private readonly client: Client,
    private readonly taskQueue: string,
  ) {}

  async create(p: Principal, heartbeatTimeoutSeconds: number): Promise<SessionStatus> {
    const id = `ses-${randomBytes(8).toString('hex')}`;
    await this.client.workflow.start(sessionWorkflow, {
      workflowId: sessionWorkflowId(id),
      taskQueue: this.taskQueue,
      args: [{ id, owner: p.owner, heartbeatTimeoutSeconds }],
      staticSummary: sessionSummary(id, p.owner, heartbeatTimeoutSeconds),
      typedSearchAttributes: [{ key: SandboxOwner, value: p.owner }],
    });
    return {
      id,
      owner: p.owner,
      state: 'ACTIVE',
      heartbeatTimeoutSeconds,
      deadline: new Date(Date.now() + heartbeatTimeoutSeconds * 1000).toISOString(),
      sandboxes: [],
    };
  }

  /** Owner of a session and whether it is still open; undefined when there is no such session. */
  async ownerOf(id: string): Promise<{ owner: string; open: boolean } | undefined> {
    try {
      const d = await this.client.workflow.getHandle(sessionWorkflowId(id)).describe();
      return { owner: d.typedSearchAttributes.get(SandboxOwner) ?? 'local', open: d.status.name === 'RUNNING' };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return undefined;
      throw fromTemporal(err) ?? err;
    }
  }

  async get(p: Principal, id: string): Promise<SessionStatus> {
    const handle = this.client.workflow.getHandle(sessionWorkflowId(id));
    try {
      const d = await handle.describe();
      const owner = d.typedSearchAttributes.get(SandboxOwner) ?? 'local';
      if (p.role !== 'admin' && p.owner !== owner) throw notFound(`session ${id}`);
      if (d.status.name === 'RUNNING' || d.status.name === 'COMPLETED') {
        const status = await this.client.withDeadline(Date.now() + 5000, () => handle.query(getSessionStatus));
        return { ...status, owner };
      }
      // Terminated/failed: no code ran at the end; the reaper destroys its sandboxes.
      return {
        id,
        owner,
        state: 'ENDED',
        heartbeatTimeoutSeconds: 0,
        deadline: (d.closeTime ?? new Date()).toISOString(),
        sandboxes: [],
        endReason: `session ${d.status.name.toLowerCase()}`,
      };
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) throw notFound(`session ${id}`);
      throw fromTemporal(err) ?? err;
    }
  }

  async heartbeat(p: Principal, id: string): Promise<SessionStatus> {
    await this.requireActive(p, id);
    await this.client.workflow.getHandle(sessionWorkflowId(id)).signal(sessionHeartbeatSignal);
    return this.get(p, id);
  }

  async end(p: Principal, id: string, requestedBy: string): Promise<SessionStatus> {
    await this.requireActive(p, id);
    const reason = `session ended by ${requestedBy}`;
    await this.client.workflow.getHandle(sessionWorkflowId(id)).signal(endSessionSignal, { reason });
    return { ...(await this.get(p, id)), state: 'ENDED' };
  }

  private async requireActive(p: Principal, id: string): Promise<void> {
    const s = await this.get(p, id);
    if (s.state !== 'ACTIVE') {
      const message = `session ${id} is ENDED (${s.endReason ?? 'ended'}); valid states: ACTIVE`;
      throw new ApiError(409, 'invalid_state', message, { state: s.state });
    }
  }
}
