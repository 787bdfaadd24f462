// The process's one Prometheus registry. Every Hourglass metric and Node's default process metrics
// live here; the API's /metrics and the worker's metrics port both print it.
import { Registry, collectDefaultMetrics } from 'prom-client';

export const metricsRegistry = new Registry();

collectDefaultMetrics({ register: metricsRegistry });
