// The pure parts of metrics: route labels, exec outcomes, and which transitions feed the lifecycle
// histograms (lease lateness only for a lease that ended; create→RUNNING only from BOOTING).
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/service';
import { routePattern } from '../../metrics/api';
import { execOutcome } from '../../metrics/instrumented-hypervisors';
import { registryPoolGauge } from '../../metrics/definitions';
import { metricsRegistry } from '../../metrics/registry';
import { watchRegistryPool } from '../../metrics/registry-pool';
import { observeTransitions } from '../../metrics/transitions';
import type { SandboxState } from '../../workflows/states';
import type { SandboxStatus, TransitionEvent } from '../../workflows/types';

describe('routePattern', () => {
  it('joins a mount and its route, without the slash express ignores', () => {
    expect(routePattern('/v1/sandboxes', '/')).toBe('/v1/sandboxes');
    expect(routePattern('/v1/sandboxes', '/:id/exec')).toBe('/v1/sandboxes/:id/exec');
    expect(routePattern('', '/metrics')).toBe('/metrics');
    expect(routePattern('', '/')).toBe('/');
  });
});

describe('execOutcome', () => {
  const result = { stdout: '', stderr: '', durationMs: 1 };
  it('names each way a command ends', () => {
    expect(execOutcome({ ...result, exitCode: 0, timedOut: false })).toBe('ok');
    expect(execOutcome({ ...result, exitCode: 3, timedOut: false })).toBe('nonzero');
    expect(execOutcome({ ...result, exitCode: 124, timedOut: true })).toBe('timeout');
    expect(execOutcome(undefined)).toBe('error');
  });
});

describe('observeTransitions', () => {
  const driver = 'unit-test-driver';
  const event = (from: SandboxState | null, to: SandboxState, at: string, sandbox: Partial<SandboxStatus>) =>
    ({
      sandboxId: 'sbx-unit',
      seq: 1,
      from,
      to,
      reason: 'test',
      at,
      sandbox: { id: 'sbx-unit', driver, createdAt: '2030-01-01T00:00:00.000Z', ...sandbox } as SandboxStatus,
    }) satisfies TransitionEvent;
  const histogram = async (name: string) => {
    const text = await metricsRegistry.getSingleMetricAsString(name);
    const value = (suffix: string) =>
      Number(new RegExp(`^${name}_${suffix}\\{driver="${driver}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    return { count: value('count'), sum: value('sum') };
  };

  it('times create→RUNNING from createdAt, only for the first RUNNING (not a start after a stop)', async () => {
    observeTransitions([
      event('PROVISIONING', 'BOOTING', '2030-01-01T00:00:01.000Z', {}),
      event('BOOTING', 'RUNNING', '2030-01-01T00:00:01.500Z', {}),
      event('STOPPED', 'RUNNING', '2030-01-01T00:05:00.000Z', {}),
    ]);
    expect(await histogram('hourglass_create_to_running_seconds')).toEqual({ count: 1, sum: 1.5 });
  });

  it('measures lease lateness on EXPIRED only: its time minus expiresAt, never below zero', async () => {
    const expiresAt = '2030-01-01T00:01:00.000Z';
    observeTransitions([
      event('RUNNING', 'EXPIRED', '2030-01-01T00:01:00.250Z', { expiresAt }),
      event('EXPIRED', 'DESTROYING', '2030-01-01T00:01:00.250Z', { expiresAt }),
      event('RUNNING', 'DESTROYING', '2030-01-01T00:00:30.000Z', { expiresAt }), // destroyed early: not late
      event('RUNNING', 'EXPIRED', '2030-01-01T00:00:59.900Z', { expiresAt }), // clock rounding: 0, not -0.1
    ]);
    expect(await histogram('hourglass_lease_lateness_seconds')).toEqual({ count: 2, sum: 0.25 });
  });
});

describe('metrics settings', () => {
  it('has no worker metrics port unless HOURGLASS_METRICS_PORT is set; it binds loopback by default', () => {
    expect(loadConfig({})).toMatchObject({ metricsPort: undefined, metricsHost: '127.0.0.1' });
    expect(loadConfig({ HOURGLASS_METRICS_PORT: '0' }).metricsPort).toBeUndefined();
    expect(loadConfig({ HOURGLASS_METRICS_PORT: '9464', HOURGLASS_METRICS_HOST: '0.0.0.0' })).toMatchObject({
      metricsPort: 9464,
      metricsHost: '0.0.0.0',
    });
    expect(() => loadConfig({ HOURGLASS_METRICS_PORT: 'nine' })).toThrow(/HOURGLASS_METRICS_PORT must be/);
  });
});

describe('hourglass_registry_pool_clients', () => {
  it('reads the pool at scrape time: in use (total − idle), idle, waiting', async () => {
    const pool = { totalCount: 20, idleCount: 0, waitingCount: 156 };
    watchRegistryPool(pool);
    const values = async () =>
      Object.fromEntries((await registryPoolGauge.get()).values.map((v) => [v.labels.state, v.value]));
    expect(await values()).toEqual({ in_use: 20, idle: 0, waiting: 156 });
    Object.assign(pool, { idleCount: 19, waitingCount: 0 });
    expect(await values()).toEqual({ in_use: 1, idle: 19, waiting: 0 });
  });
});
