// The data plane on the process driver when commands start in the service itself (no spawner
// helper: HOURGLASS_SPAWNER=0, or the helper could not start): the same contract holds.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProcessHypervisor } from '../../hypervisors/process/driver';
import { dataPlaneContract } from './data-plane-contract';

// Read by the spawner module at its first command, which comes after this.
process.env.HOURGLASS_SPAWNER = '0';

const stateDir = mkdtempSync(path.join(os.tmpdir(), 'hg-dp-in-process-'));
dataPlaneContract(
  'process (bubblewrap, commands started in-process)',
  () => new ProcessHypervisor({ stateDir, limits: { memoryMiB: 256, pids: 128, tmpMiB: 16, diskMiB: 256 } }),
  { cleanup: async () => rmSync(stateDir, { recursive: true, force: true }) },
);
