// Histories recorded from the sandbox and session workflows before their reshape into a class
// (at commit 0e54690), one per path through them, over the fake activities: each must replay
// without nondeterminism against the current code. Every run of a continued-as-new chain is a file.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker, bundleWorkflowCode } from '@temporalio/worker';
import { expect, it } from 'vitest';
import { WORKFLOWS_PATH } from '../../../worker/worker';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

it('histories recorded before the reshape replay against the current code', { timeout: 60_000 }, async () => {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const workflowBundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
  const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'));
  const histories = files.map((file) => ({
    workflowId: file,
    history: proto.temporal.api.history.v1.History.decode(readFileSync(path.join(FIXTURES, file))),
  }));
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle }, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  expect(files.length).toBeGreaterThan(10);
  expect(failures).toEqual([]);
});
