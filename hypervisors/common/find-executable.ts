// Where a program is on a search path (like `command -v`), without starting a shell.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export function findExecutable(bin: string, searchPath = process.env.PATH ?? ''): string | null {
  for (const dir of searchPath.split(':').filter(Boolean)) {
    const file = path.join(dir, bin);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return null;
}
