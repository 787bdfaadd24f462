// What a scrape of /metrics returns (the API's route and the worker's port alike): this process's
// registry, then the Temporal SDK's metrics when this process runs a worker that exports them.
import { metricsRegistry } from './registry';
import { sdkMetricsText } from './sdk-metrics';
import './definitions'; // every Hourglass metric is registered before the first scrape

export const METRICS_CONTENT_TYPE = metricsRegistry.contentType;

export async function metricsText(): Promise<string> {
  const [own, sdk] = await Promise.all([metricsRegistry.metrics(), sdkMetricsText()]);
  return sdk ? `${own}\n${sdk}` : own;
}
