// Activities that must not wait for each other run on task queues of their own, each with its own
// slots on every worker: a backlog of creates never delays the destroys a lease end asks for.

/** Creates and boot waits: slow, CPU-heavy, limited per worker. */
export const provisionQueue = (taskQueue: string): string => `${taskQueue}-provision`;

/**
 * Streamed and background commands: each holds a slot for as long as it runs (a dev server: hours),
 * so they get slots of their own, many of them (they wait on pipes, not on the CPU), and never
 * take one a registry write or a plain exec on the main queue needs.
 */
export const execQueue = (taskQueue: string): string => `${taskQueue}-execs`;

/** Destroys: never refused, never queued behind creates. */
export const teardownQueue = (taskQueue: string): string => `${taskQueue}-teardown`;

/**
 * Webhook deliveries: POSTs to tenants' receivers (a slow one holds a slot up to 10 s per attempt).
 * On a queue of their own, they never take a slot an exec (main queue) or a destroy needs.
 */
export const webhookQueue = (taskQueue: string): string => `${taskQueue}-webhooks`;

/**
 * Webhook waits: each subscription's idle long poll for its next events. Separate from deliveries,
 * so any number of quiet subscriptions never holds a slot a delivery needs.
 */
export const webhookWaitQueue = (taskQueue: string): string => `${taskQueue}-webhook-waits`;
