// An exec's id: random, or derived from the Idempotency-Key so a retry names the same exec (its
// update id dedupes in the workflow, and a retry finds the exec and follows it). Pure, so a caller
// that sent the key (the MCP server) knows the id before any answer: it can kill what it started.
import { createHash, randomUUID } from 'node:crypto';

export function execIdFor(idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return randomUUID();
  return `k-${createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32)}`;
}
