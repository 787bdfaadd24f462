// Every workflow the worker runs.
export { sandboxWorkflow } from './sandbox';
export { forceDestroyWorkflow } from './force-destroy';
export { reaperWorkflow } from './reaper';
export { sessionWorkflow } from './session';
export { webhookWorkflow } from './webhook';
