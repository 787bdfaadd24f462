// Small file-system questions every driver asks.
import { stat } from 'node:fs/promises';

/** Whether anything is at `path` (a dangling symlink or an unreadable parent count as nothing). */
export async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
