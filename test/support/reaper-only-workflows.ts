// A worker built from this bundle cannot run sandbox workflows: their tasks fail forever
// ("stuck workflow task", e.g. a bad deploy) while the reaper and force-destroy still run.
export { reaperWorkflow } from '../../workflows/reaper';
export { forceDestroyWorkflow } from '../../workflows/force-destroy';
