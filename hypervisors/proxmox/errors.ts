// PVE's failures as the lifecycle reads them: permanent (auth, permissions, bad requests, missing
// VMs) or worth retrying (everything else).
import { BusyError, HypervisorError, NotFoundError } from '../errors';
import { PveApiError, PveTaskError, PveTaskTimeoutError } from './client';

/** PVE's words for a VM that is not there (any more). */
export const VM_GONE = /does not exist|unable to find configuration file/;

/** What PVE said: an API error's message or a failed task's exit status. */
export function pveText(err: unknown): string {
  return err instanceof PveApiError ? err.pveMessage : err instanceof PveTaskError ? err.exitstatus : '';
}

/** Runs fn, turning PVE's errors into the driver errors the lifecycle acts on. */
export async function mapErrors<T>(id: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toHypervisorError(err, id);
  }
}

export function toHypervisorError(err: unknown, id: string): unknown {
  if (err instanceof HypervisorError || !(err instanceof Error)) return err;
  if (err instanceof PveApiError) {
    const text = err.pveMessage;
    if (err.status === 401) {
      return new HypervisorError(`PVE rejected the API token: ${err.message}`, 'unauthorized', true);
    }
    if (err.status === 403) return new HypervisorError(err.message, 'forbidden', true);
    if (err.status === 400) return new HypervisorError(err.message, 'bad_request', true);
    if (err.status === 501) return new HypervisorError(err.message, 'not_implemented', true);
    if (VM_GONE.test(text)) return new NotFoundError(id, text);
    if (/VM is locked|can't lock file|not running/.test(text)) return new BusyError(`sandbox ${id}: ${err.message}`);
    return new HypervisorError(err.message, err.status === 500 ? 'pve_error' : 'pve_unavailable', false);
  }
  if (err instanceof PveTaskError) {
    if (VM_GONE.test(err.exitstatus)) return new NotFoundError(id, err.exitstatus);
    if (/VM is locked|can't lock file/.test(err.exitstatus)) return new BusyError(`sandbox ${id}: ${err.message}`);
    return new HypervisorError(`sandbox ${id}: ${err.message}`, 'task_failed', false);
  }
  if (err instanceof PveTaskTimeoutError) {
    return new HypervisorError(`sandbox ${id}: ${err.message}`, 'task_timeout', false);
  }
  return err; // aborts and programming errors pass through unchanged
}
