// The files update: the workflow checks the sandbox may be used and runs one file operation as an
// activity; the bytes go through the registry's transfers, never through this history.
import { ApplicationFailure, CancellationScope } from '@temporalio/workflow';
import { Failure } from '../failures';
import { fileOpSummary } from '../summaries';
import type { FileOp, FileOpResult } from '../types';
import { files } from './activity-options';
import { rootMessage, rootType } from './root-cause';
import type { SandboxRun } from './run';

const OPS = ['write', 'read', 'list', 'remove', 'mkdir'] as const;
/** A driver's answer that names the caller's mistake: passed on as it is (400, 404), not as an activity failure. */
const CALLER_ERRORS: readonly string[] = [Failure.BadSpec, Failure.PathNotFound, Failure.TooLarge];

export function validateFileOp(op: FileOp | undefined): void {
  if (!op || !OPS.includes(op.op) || typeof op.path !== 'string' || op.path === '') {
    const message = `a file operation needs op (one of ${OPS.join(', ')}) and a path`;
    throw ApplicationFailure.nonRetryable(message, Failure.InvalidArgument);
  }
}

/** Runs in a scope of its own, which a destroy cancels once the VM is gone (its retries would only fail). */
export async function runFileOp(run: SandboxRun, op: FileOp): Promise<FileOpResult> {
  const { id } = run;
  const scope = new CancellationScope();
  run.fileOps.add(scope);
  try {
    return await scope.run(() => files(fileOpSummary(op.op, op.path)).fileOp({ id, driver: run.request.driver, op }));
  } catch (err) {
    if (run.destroyReason) {
      throw ApplicationFailure.nonRetryable(
        `cannot ${op.op} ${op.path} in sandbox ${id}: it was destroyed during the operation (${run.destroyReason})`,
        Failure.InvalidState,
        { state: run.state, operation: 'files', destroyReason: run.destroyReason },
      );
    }
    const type = rootType(err);
    if (type && CALLER_ERRORS.includes(type)) throw ApplicationFailure.nonRetryable(rootMessage(err), type);
    throw err;
  } finally {
    run.fileOps.delete(scope);
  }
}
