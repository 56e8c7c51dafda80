// Prometheus metrics. Each daemon owns one registry and serves it on /metrics; components take
// the registry they register on, so tests can read their own figures.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export { Counter, Gauge, Histogram, Registry };

/** A registry with the process metrics (memory, CPU, event loop lag) already registered. */
export function createMetricsRegistry(options: { processMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'ccbridge_' });
  return registry;
}
