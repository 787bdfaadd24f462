// A sandbox's whole life as one workflow: create → boot → run → lease → guaranteed destroy.
// The run's state and what each message does: sandbox/run.ts. Its parts: sandbox/ (job, exec,
// lease loop, rollover, registry and UI, activity options).
import { CancellationScope, isCancellation, setHandler } from '@temporalio/workflow';
import { EndReason } from './end-reasons';
import {
  awaitReadyUpdate,
  destroySignal,
  execUpdate,
  filesUpdate,
  getStatus,
  killExecUpdate,
  renewLeaseSignal,
  renewLeaseUpdate,
  startExecUpdate,
  startUpdate,
  stopUpdate,
  vmLostSignal,
} from './messages';
import { holdLease } from './sandbox/hold-lease';
import { runJob } from './sandbox/job';
import { rollOver } from './sandbox/rollover';
import { rootMessage, rootType } from './sandbox/root-cause';
import { SandboxRun } from './sandbox/run';
import type { SandboxInput, SandboxResult } from './types';

export async function sandboxWorkflow(input: SandboxInput): Promise<SandboxResult> {
  const sandbox = new SandboxRun(input);

  setHandler(getStatus, () => sandbox.status());
  setHandler(renewLeaseUpdate, (req) => sandbox.renewLease(req), { validator: (req) => sandbox.validateRenewal(req) });
  setHandler(renewLeaseSignal, (req) => sandbox.renewLeaseBySignal(req));
  setHandler(destroySignal, (req) => sandbox.destroy(req));
  setHandler(vmLostSignal, (req) => sandbox.vmLost(req));
  setHandler(execUpdate, (cmd) => sandbox.exec(cmd), { validator: (cmd) => sandbox.validateExec(cmd) });
  setHandler(startExecUpdate, (cmd) => sandbox.startExec(cmd), {
    validator: (cmd) => sandbox.validateExec(cmd, true),
  });
  setHandler(killExecUpdate, (req) => sandbox.killExec(req), { validator: (req) => sandbox.validateKillExec(req) });
  setHandler(filesUpdate, (op) => sandbox.files(op), { validator: (op) => sandbox.validateFiles(op) });
  setHandler(stopUpdate, () => sandbox.stop(), { validator: () => sandbox.validateStop() });
  setHandler(startUpdate, () => sandbox.start(), { validator: () => sandbox.validateStart() });
  setHandler(awaitReadyUpdate, () => sandbox.ready());

  const { request, carried } = input;
  sandbox.announce(Boolean(carried));
  let outcome: 'ended' | 'rollover' = 'ended';
  let destroyed: SandboxResult | undefined;
  let cancelled: unknown;
  try {
    if (!carried && request.sessionId) await sandbox.joinSession(request.sessionId);
    if (!carried && !sandbox.destroyReason) {
      await sandbox.provisionAndBoot();
      void runJob(sandbox);
    }
    outcome = await holdLease(sandbox);
  } catch (err) {
    if (isCancellation(err) && CancellationScope.current().consideredCancelled) {
      cancelled = err;
      sandbox.requestDestroy('workflow cancelled', EndReason.Cancelled);
    } else if (!sandbox.destroyReason) {
      sandbox.createFailed(rootMessage(err), rootType(err));
    }
  } finally {
    // Continue-as-new is decided above and happens after this block, so a rollover never destroys.
    if (outcome !== 'rollover') destroyed = await CancellationScope.nonCancellable(() => sandbox.destroyVm());
    await CancellationScope.nonCancellable(() => sandbox.publish.written());
  }
  if (cancelled) throw cancelled;
  return destroyed ?? rollOver(sandbox); // destroyed, or the lease goes on in a new run
}
