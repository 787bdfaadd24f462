// Workflow ids: the one place that knows how a sandbox or a session id becomes a workflow id.
export const sandboxWorkflowId = (sandboxId: string) => `sandbox:${sandboxId}`;
export const sessionWorkflowId = (sessionId: string) => `session:${sessionId}`;
export const forceDestroyWorkflowId = (sandboxId: string) => `force-destroy:${sandboxId}`;
export const webhookWorkflowId = (webhookId: string) => `webhook:${webhookId}`;

/** The sandbox a workflow id is about (its lifecycle or a force-destroy), for log lines. */
export function sandboxIdOfWorkflow(workflowId: string): string | undefined {
  return /^(?:sandbox|force-destroy):(.+)$/.exec(workflowId)?.[1];
}

export const sessionIdOfWorkflow = (workflowId: string): string | undefined => /^session:(.+)$/.exec(workflowId)?.[1];
