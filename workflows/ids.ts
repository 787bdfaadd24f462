// Workflow ids: the one place that knows how a sandbox or a session id becomes a workflow id.
export const sandboxWorkflowId = (sandboxId: string) => `sandbox:${sandboxId}`;
export const sessionWorkflowId = (sessionId: string) => `session:${sessionId}`;
