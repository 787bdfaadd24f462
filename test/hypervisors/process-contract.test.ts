// The driver contract (contract.ts) for the process driver, with bubblewrap and without isolation.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { driverContract } from './contract';

/** Small limits keep creates fast (the workspace template is made once per size and state dir). */
const SMALL = { memoryMiB: 256, pids: 128, tmpMiB: 16, diskMiB: 64 };

for (const isolation of ['bubblewrap', 'none'] as const) {
  const stateDir = mkdtempSync(path.join(os.tmpdir(), `hg-contract-${isolation}-`));
  let n = 0;
  driverContract(`process (${isolation})`, {
    driver: () => new ProcessHypervisor({ stateDir, isolation, limits: SMALL }),
    newId: () => `c${++n}`,
    // Commands start in their workspace, which is also HOME: /work inside the namespace, else its host directory.
    home: (info) => (isolation === 'bubblewrap' ? '/work' : String(info.details.dir)),
    readyMs: 10_000,
    cleanup: async () => rmSync(stateDir, { recursive: true, force: true }),
  });
}
