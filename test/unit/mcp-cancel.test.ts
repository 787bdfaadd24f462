// The MCP exec tool's cancel before the stream's `start`: the exec it named with its own
// Idempotency-Key is killed once it exists (404 meanwhile), and left alone once it has ended.
import { describe, expect, it } from 'vitest';
import { execIdFor } from '../../api/execs/exec-id';
import { HourglassApiError } from '../../client';
import { killOnceStarted } from '../../mcp/tools/exec';

const notYet = () => new HourglassApiError(404, 'not_found', 'exec not found');

describe('killOnceStarted', () => {
  it('retries through 404s and running answers (the exec not yet started) until it is killed', async () => {
    const calls: string[] = [];
    const client = {
      killExec: async (id: string, execId: string) => {
        calls.push(`${id}/${execId}`);
        if (calls.length < 3) throw notYet();
        // Recorded but not yet held by the workflow: the kill answers it still running.
        return { execId, state: calls.length < 4 ? 'running' : 'killed' } as never;
      },
    };
    expect(await killOnceStarted(client, 'sbx-1', 'k-1', 10_000)).toBe('killed');
    expect(calls).toEqual(['sbx-1/k-1', 'sbx-1/k-1', 'sbx-1/k-1', 'sbx-1/k-1']);
  });

  it('stops at a 409 (it has already ended) and gives up after its window', async () => {
    const ended = { killExec: async () => Promise.reject(new HourglassApiError(409, 'invalid_state', 'ended')) };
    expect(await killOnceStarted(ended, 'sbx-1', 'k-1')).toBe('ended');
    const never = { killExec: async () => Promise.reject(notYet()) };
    expect(await killOnceStarted(never, 'sbx-1', 'k-1', 600)).toBe('gave up');
  });

  it('knows the exec id from the key it sent, as the API derives it', () => {
    expect(execIdFor('mcp-abc')).toBe(execIdFor('mcp-abc'));
    expect(execIdFor('mcp-abc')).toMatch(/^k-[0-9a-f]{32}$/);
    expect(execIdFor('mcp-abc')).not.toBe(execIdFor('mcp-abd'));
  });
});
