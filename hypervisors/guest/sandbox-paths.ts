// Lexical confinement of a path an agent gives to the sandbox's workspace: the first of two checks.
// The second (symlinks resolving outside) can only be made inside the sandbox, by the command that
// acts on the path (file-scripts.ts). Pure: no file system access here.
import { posix } from 'node:path';
import { BadSpecError } from '../errors';

/** Longest path accepted, in bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/**
 * The absolute path, beneath `workspace`, that `userPath` names: relative to the workspace, or
 * absolute beneath it. Refuses (BadSpecError) an empty path, a NUL byte, more than MAX_PATH_BYTES,
 * any `..` segment and an absolute path outside the workspace. `.` and `//` are tidied away.
 */
export function confinePath(id: string, workspace: string, userPath: string): string {
  const refuse = (why: string) =>
    new BadSpecError(`sandbox ${id}: path ${shown(userPath)} ${why} (paths stay in the workspace ${workspace})`);
  if (!posix.isAbsolute(workspace) || workspace !== posix.normalize(workspace) || workspace.endsWith('/')) {
    throw new Error(`workspace must be a normalized absolute path without a trailing slash (got ${workspace})`);
  }
  if (userPath.length === 0) throw refuse('is empty');
  if (userPath.includes('\0')) throw refuse('contains a NUL byte');
  const bytes = Buffer.byteLength(userPath, 'utf8');
  if (bytes > MAX_PATH_BYTES) throw refuse(`is ${bytes} bytes long, more than ${MAX_PATH_BYTES}`);
  if (userPath.split('/').includes('..')) throw refuse('has a ".." segment');
  if (!posix.isAbsolute(userPath)) return stripSlash(posix.join(workspace, userPath));
  const absolute = stripSlash(posix.normalize(userPath));
  if (absolute !== workspace && !absolute.startsWith(`${workspace}/`)) throw refuse('is outside the workspace');
  return absolute;
}

function stripSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** A path for a message: JSON-quoted (NUL and newlines visible), long ones cut. */
export function shown(p: string): string {
  return JSON.stringify(p.length > 200 ? `${p.slice(0, 200)}…` : p);
}
