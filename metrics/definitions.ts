// Every metric Hourglass defines (the README's Metrics section lists them). Labels are bounded
// sets: driver names, states, operations, outcomes, route patterns — never ids or raw URLs.
import { Counter, Gauge, Histogram } from 'prom-client';
import { metricsRegistry } from './registry';
import { readRegistryPool } from './registry-pool';
import { readSandboxCounts } from './sandbox-counts';

const registers = [metricsRegistry];

/** Seconds, from a fast local create to a slow VM boot. */
const LIFECYCLE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300];
/** Seconds late: the promise is "on time", so most mass should sit in the first buckets. */
const LATENESS_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds an exec or an API request takes: milliseconds up to the longest command timeouts. */
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export const sandboxesGauge = new Gauge({
  name: 'hourglass_sandboxes',
  help: 'Sandboxes not yet DESTROYED, by state and driver (read from the registry at scrape time)',
  labelNames: ['state', 'driver'] as const,
  registers,
  async collect() {
    await readSandboxCounts(this, sandboxReadFailures);
  },
});

export const sandboxReadFailures = new Counter({
  name: 'hourglass_sandboxes_read_failures_total',
  help: 'Scrapes whose registry read for hourglass_sandboxes failed or took too long (the gauge was left empty)',
  registers,
});

export const registryPoolGauge = new Gauge({
  name: 'hourglass_registry_pool_clients',
  help: "This process's registry connections: in_use, idle, and waiting (queries queued for one)",
  labelNames: ['state'] as const,
  registers,
  collect() {
    readRegistryPool(this);
  },
});

export const createToRunningSeconds = new Histogram({
  name: 'hourglass_create_to_running_seconds',
  help: "From a sandbox's creation to its RUNNING transition, by driver",
  labelNames: ['driver'] as const,
  buckets: LIFECYCLE_BUCKETS,
  registers,
});

export const destroySeconds = new Histogram({
  name: 'hourglass_destroy_duration_seconds',
  help: "The driver's destroy call (successful ones), by driver",
  labelNames: ['driver'] as const,
  buckets: LIFECYCLE_BUCKETS,
  registers,
});

export const leaseLatenessSeconds = new Histogram({
  name: 'hourglass_lease_lateness_seconds',
  help: 'For sandboxes destroyed because their lease ended: destroy start minus expiresAt, by driver',
  labelNames: ['driver'] as const,
  buckets: LATENESS_BUCKETS,
  registers,
});

export const execsTotal = new Counter({
  name: 'hourglass_execs_total',
  help: 'Commands run in sandboxes, by driver and outcome (ok, nonzero, timeout, error)',
  labelNames: ['driver', 'outcome'] as const,
  registers,
});

export const execSeconds = new Histogram({
  name: 'hourglass_exec_duration_seconds',
  help: 'Commands run in sandboxes: the driver call, by driver and outcome',
  labelNames: ['driver', 'outcome'] as const,
  buckets: REQUEST_BUCKETS,
  registers,
});

export const reaperRunsTotal = new Counter({
  name: 'hourglass_reaper_runs_total',
  help: 'Reaper runs stored, by dry_run',
  labelNames: ['dry_run'] as const,
  registers,
});

export const driftsFixedTotal = new Counter({
  name: 'hourglass_reaper_drifts_fixed_total',
  help: 'Drifts the reaper fixed (not dry runs), by kind',
  labelNames: ['kind'] as const,
  registers,
});

export const driverErrorsTotal = new Counter({
  name: 'hourglass_driver_errors_total',
  help: 'Driver calls that failed (not those cancelled by their caller), by driver and operation',
  labelNames: ['driver', 'operation'] as const,
  registers,
});

export const apiRequestsTotal = new Counter({
  name: 'hourglass_api_requests_total',
  help: 'API requests, by method, route pattern and status',
  labelNames: ['method', 'route', 'status'] as const,
  registers,
});

export const apiRequestSeconds = new Histogram({
  name: 'hourglass_api_request_duration_seconds',
  help: 'API request duration until the response is sent, by method and route pattern',
  labelNames: ['method', 'route'] as const,
  buckets: REQUEST_BUCKETS,
  registers,
});
