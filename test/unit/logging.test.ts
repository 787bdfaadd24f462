// The pure parts of the logs: LOG_LEVEL, request ids, which sandbox a path or a workflow names,
// what the SDK's metadata becomes, and what a logged URL keeps.
import { describe, expect, it } from 'vitest';
import { loggedUrl, sandboxIdOfPath } from '../../api/request-log';
import { loadConfig } from '../../config/service';
import { LOG_LEVELS, logLevelFromEnv } from '../../log/level';
import { requestIdFor } from '../../log/request-id';
import { fields } from '../../worker/sdk-logger';
import { sandboxIdOfWorkflow } from '../../workflows/ids';

describe('LOG_LEVEL', () => {
  it('defaults to info and takes any pino level, in any case', () => {
    expect(logLevelFromEnv({})).toBe('info');
    expect(logLevelFromEnv({ LOG_LEVEL: '' })).toBe('info');
    for (const level of LOG_LEVELS) expect(logLevelFromEnv({ LOG_LEVEL: level.toUpperCase() })).toBe(level);
  });

  it('refuses anything else, naming the variable and the allowed values', () => {
    expect(() => logLevelFromEnv({ LOG_LEVEL: 'verbose' })).toThrow(
      "LOG_LEVEL: 'verbose' is not a log level; use one of fatal, error, warn, info, debug, trace, silent",
    );
  });

  it('is a start-up error of the service configuration', () => {
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/^LOG_LEVEL: 'loud' is not a log level/);
  });
});

describe('request ids', () => {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

  it("keeps a caller's short, safe id", () => {
    expect(requestIdFor('trace-42.a_b')).toBe('trace-42.a_b');
    expect(requestIdFor('x'.repeat(128))).toBe('x'.repeat(128));
  });

  it('replaces a missing, long, repeated or unsafe one with a UUID', () => {
    for (const given of [undefined, '', 'x'.repeat(129), 'a b', 'a\nb', '<script>', 'ü', ['a', 'b']]) {
      expect(requestIdFor(given)).toMatch(uuid);
    }
  });
});

describe('which sandbox a line is about', () => {
  it('reads it from /v1/sandboxes/:id… and /v1/jobs/:id paths', () => {
    expect(sandboxIdOfPath('/v1/sandboxes/sbx-1a2b')).toBe('sbx-1a2b');
    expect(sandboxIdOfPath('/v1/sandboxes/sbx-1a2b/exec?x=1')).toBe('sbx-1a2b');
    expect(sandboxIdOfPath('/v1/jobs/sbx-9')).toBe('sbx-9');
    for (const path of ['/v1/sandboxes', '/v1/sandboxes/', '/v1/sandboxes/prune', '/v1/sandboxes/destroy']) {
      expect(sandboxIdOfPath(path)).toBeUndefined();
    }
    expect(sandboxIdOfPath('/v1/sandboxes/%2e%2e')).toBeUndefined(); // not an id the API hands out
  });

  it('reads it from sandbox and force-destroy workflow ids, not from the reaper', () => {
    expect(sandboxIdOfWorkflow('sandbox:sbx-1')).toBe('sbx-1');
    expect(sandboxIdOfWorkflow('force-destroy:sbx-1')).toBe('sbx-1');
    expect(sandboxIdOfWorkflow('reaper:hourglass-reaper')).toBeUndefined();
    expect(sandboxIdOfWorkflow('session:ses-1')).toBeUndefined();
  });

  it("maps the SDK's metadata: sandboxId from workflowId, component, errors under err", () => {
    const error = new Error('boom');
    expect(
      fields({ workflowId: 'sandbox:sbx-7', sdkComponent: 'activity', activityType: 'createSandbox', error }),
    ).toEqual({
      workflowId: 'sandbox:sbx-7',
      sandboxId: 'sbx-7',
      component: 'activity',
      activityType: 'createSandbox',
      err: error,
    });
    expect(fields({ workflowId: 'session:ses-1', sdkComponent: 'worker' })).toEqual({
      workflowId: 'session:ses-1',
      sessionId: 'ses-1',
      sdkComponent: 'worker',
    });
    expect(fields({ [Symbol.for('log_timestamp')]: 1n })).toEqual({});
  });
});

describe('logged URLs', () => {
  it('never keep a token passed in the query string', () => {
    expect(loggedUrl('/v1/events?follow=true&token=s3cret&state=RUNNING')).toBe(
      '/v1/events?follow=true&token=[redacted]&state=RUNNING',
    );
    expect(loggedUrl('/v1/events?access_token=s3cret')).toBe('/v1/events?access_token=[redacted]');
    expect(loggedUrl('/v1/sandboxes/sbx-1')).toBe('/v1/sandboxes/sbx-1');
  });
});
