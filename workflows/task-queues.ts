// Activities that must not wait for each other run on task queues of their own, each with its own
// slots on every worker: a backlog of creates never delays the destroys a lease end asks for.

/** Creates and boot waits: slow, CPU-heavy, limited per worker. */
export const provisionQueue = (taskQueue: string): string => `${taskQueue}-provision`;

/** Destroys: never refused, never queued behind creates. */
export const teardownQueue = (taskQueue: string): string => `${taskQueue}-teardown`;

/**
 * Webhook waits and deliveries: network I/O to tenants' receivers. Each subscription holds a slot
 * while it long-polls for events, and a slow receiver holds one for up to 10 s per attempt: on a
 * queue of their own, neither ever takes a slot an exec (main queue) or a destroy needs.
 */
export const webhookQueue = (taskQueue: string): string => `${taskQueue}-webhooks`;
