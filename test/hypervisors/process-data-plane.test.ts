// The data plane (data-plane-contract.ts) on the process driver, with bubblewrap and without isolation.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { dataPlaneContract } from './data-plane-contract';

/** The workspace holds the 50 MiB file and its replacement beside it. */
const LIMITS = { memoryMiB: 256, pids: 128, tmpMiB: 16, diskMiB: 256 };

for (const isolation of ['bubblewrap', 'none'] as const) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), `hg-dp-${isolation}-`));
  // Without isolation, commands (uid 65534) reach the workspace by its host path: let them pass.
  chmodSync(stateDir, 0o711);
  dataPlaneContract(`process (${isolation})`, () => new ProcessHypervisor({ stateDir, isolation, limits: LIMITS }), {
    cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
  });
}
