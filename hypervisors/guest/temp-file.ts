// The file layer's temporary files in a sandbox (an upload's, a tar's, a big listing's) never stay.
import { REMOVE_TEMP_SCRIPT, scriptArgv } from './file-scripts';
import type { FileTransport } from './file-transport';

/** Removes a temporary file the layer made (best effort: it may be gone already, or the sandbox). */
export async function removeTemp(t: FileTransport, temp: string): Promise<void> {
  await t.run(scriptArgv(REMOVE_TEMP_SCRIPT, [temp]), { timeoutSeconds: 30 }).catch(() => undefined);
}
