// The Temporal SDK's own metrics (workflow task latencies, slots, pollers, activity outcomes …) come
// from its Rust core, which serves them through its own Prometheus exporter. It listens on a loopback
// port of its own, and Hourglass's /metrics appends what it serves: one scrape shows both.
import type { MetricsExporterConfig } from '@temporalio/worker';
import { freePort } from '../worker/free-port';

const SDK_SCRAPE_TIMEOUT_MS = 2000;

let sdkMetricsUrl: string | undefined;

/**
 * The `telemetryOptions.metrics` for Runtime.install: a Prometheus exporter on a free loopback port
 * (reserved now; the SDK binds it when the first worker connects). Counters end in `_total` and
 * durations are in seconds with a `_seconds` suffix, as Prometheus's naming conventions ask.
 */
export async function sdkPrometheusExporter(): Promise<MetricsExporterConfig> {
  const bindAddress = `127.0.0.1:${await freePort()}`;
  sdkMetricsUrl = `http://${bindAddress}/metrics`;
  return {
    prometheus: { bindAddress, countersTotalSuffix: true, useSecondsForDurations: true, unitSuffix: true },
  };
}

/** The SDK exporter's text, a comment saying why it is missing, or '' when this process has none. */
export async function sdkMetricsText(): Promise<string> {
  if (!sdkMetricsUrl) return '';
  try {
    const res = await fetch(sdkMetricsUrl, { signal: AbortSignal.timeout(SDK_SCRAPE_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return await res.text();
  } catch (err) {
    // Before the first worker connects the exporter is not up yet; a comment keeps the scrape valid.
    return `# Temporal SDK metrics unavailable from ${sdkMetricsUrl}: ${(err as Error).message}\n`;
  }
}
