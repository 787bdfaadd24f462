// What a file script's exit means (its refusals by exit code, file-scripts.ts) as the driver
// errors the API maps: escapes and wrong kinds 400, missing paths 404, a busy sandbox 409.
import { BadSpecError, BusyError, PathNotFoundError } from '../errors';
import type { ExecResult } from '../types';
import { FileExit } from './file-scripts';
import type { FileTransport } from './file-transport';
import { outputBytes } from './output';
import { shown } from './sandbox-paths';

/** The error for a script that did not exit 0: its refusal by exit code, else what it said. */
export function scriptFailure(t: FileTransport, userPath: string, r: ExecResult): Error {
  const detail = outputBytes(r.stderr, r.stderrBase64).toString('utf8');
  const path = shown(userPath);
  switch (r.exitCode) {
    case FileExit.Escapes:
      return new BadSpecError(
        `sandbox ${t.id}: path ${path} resolves to ${shown(detail)}, outside the workspace ${t.workspace} ` +
          '(a symlink points out of it)',
      );
    case FileExit.NotFound:
      return new PathNotFoundError(t.id, detail || userPath);
    case FileExit.WrongKind:
      return new BadSpecError(`sandbox ${t.id}: path ${path} ${detail}`);
    case FileExit.NoWorkspace:
      // Without isolation: a directory above the host work dir that uid 65534 may not search.
      return new BusyError(
        `sandbox ${t.id}: its workspace ${t.workspace} cannot be resolved from inside it: it must exist and ` +
          'every directory above it be searchable by the user commands run as',
      );
    case FileExit.Changed:
      return new BusyError(`sandbox ${t.id}: the directory ${path} kept changing while it was listed; try again`);
  }
  if (r.timedOut) {
    return new BusyError(`sandbox ${t.id}: the file operation on ${path} timed out after ${r.durationMs} ms`);
  }
  const said = detail.trim() || `exit code ${r.exitCode}`;
  return new BadSpecError(`sandbox ${t.id}: the file operation on ${path} failed: ${said}`);
}

/** A streamed command's end as an ExecResult (its stdout went to a sink). */
export function scriptResult(exitCode: number, stderr: string): ExecResult {
  return { exitCode, stdout: '', stderr, durationMs: 0, timedOut: false };
}
