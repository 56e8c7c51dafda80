// A log-cache reader: `GET /api/v1/read/<source_id>` as log-cache serves it (envelopes as JSON).
// TPS reads container metrics through it — from the embedded Diego's read API on one machine,
// from the deployment's log-cache against a real foundation.
import { tlsFetch, type ClientTls } from '../../lib/tls-fetch.js';
import type { InstanceMetrics } from '../../services/tps/instances.js';

export interface LogCacheClientOptions {
  /** e.g. http://127.0.0.1:8083 */
  url: string;
  timeoutMs?: number;
  /** For https: the CA and, where log-cache asks for one, a client certificate. */
  tls?: ClientTls;
}

/** One loggregator v2 envelope as log-cache's JSON API writes it (int64 values as strings). */
export interface Envelope {
  timestamp?: string;
  source_id?: string;
  instance_id?: string;
  tags?: Record<string, string>;
  gauge?: { metrics?: Record<string, { unit?: string; value?: number }> };
  log?: { payload?: string; type?: string };
  counter?: { name?: string; delta?: string; total?: string };
}

export interface ReadOptions {
  envelopeTypes?: ('LOG' | 'GAUGE' | 'COUNTER' | 'TIMER' | 'EVENT')[];
  /** Nanoseconds since the epoch. */
  startTime?: bigint;
  endTime?: bigint;
  limit?: number;
  descending?: boolean;
  /** Passed through as the Authorization header (the caller's credentials, never ours). */
  authorization?: string;
  signal?: AbortSignal;
}

export class LogCacheError extends Error {
  override name = 'LogCacheError';
}

export interface LogCacheClient {
  read(sourceId: string, options?: ReadOptions): Promise<Envelope[]>;
  /** The latest cpu / memory / disk gauges per instance index of one process. */
  containerMetrics(sourceId: string, processGuid: string, options?: Pick<ReadOptions, 'authorization' | 'signal'>): Promise<InstanceMetrics[]>;
}

/** How far back container metrics are looked for (cells emit them every few seconds). */
const METRICS_WINDOW_NS = 120n * 1_000_000_000n;

export function createLogCacheClient(options: LogCacheClientOptions): LogCacheClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 5_000;
  const fetch = tlsFetch(options.tls);

  async function read(sourceId: string, readOptions: ReadOptions = {}): Promise<Envelope[]> {
    const query = new URLSearchParams();
    if (readOptions.startTime !== undefined) query.set('start_time', readOptions.startTime.toString());
    if (readOptions.endTime !== undefined) query.set('end_time', readOptions.endTime.toString());
    for (const type of readOptions.envelopeTypes ?? []) query.append('envelope_types', type);
    if (readOptions.limit !== undefined) query.set('limit', String(readOptions.limit));
    if (readOptions.descending) query.set('descending', 'true');
    const headers: Record<string, string> = {};
    if (readOptions.authorization) headers.Authorization = readOptions.authorization;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = readOptions.signal ? AbortSignal.any([readOptions.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(`${base}/api/v1/read/${encodeURIComponent(sourceId)}?${query}`, { headers, signal });
    } catch (error) {
      throw new LogCacheError(`log-cache unreachable: ${(error as Error).message}`);
    }
    if (response.status !== 200) throw new LogCacheError(`log-cache answered ${response.status}`);
    let body: { envelopes?: { batch?: Envelope[] } };
    try {
      body = (await response.json()) as typeof body;
    } catch {
      throw new LogCacheError('log-cache answer is not JSON');
    }
    return body.envelopes?.batch ?? [];
  }

  return {
    read,
    async containerMetrics(sourceId, processGuid, metricOptions = {}) {
      const now = BigInt(Date.now()) * 1_000_000n;
      const envelopes = await read(sourceId, { ...metricOptions, envelopeTypes: ['GAUGE'], startTime: now - METRICS_WINDOW_NS, limit: 1000 });
      return containerMetricsFrom(envelopes, processGuid);
    },
  };
}

/** The latest cpu/memory/disk gauge per instance index; envelopes of other processes are skipped. */
export function containerMetricsFrom(envelopes: readonly Envelope[], processGuid: string): InstanceMetrics[] {
  const latest = new Map<number, { at: bigint; metrics: InstanceMetrics }>();
  for (const envelope of envelopes) {
    const gauges = envelope.gauge?.metrics;
    if (!gauges || gauges.cpu === undefined || gauges.memory === undefined) continue;
    const owner = envelope.tags?.process_id;
    if (owner !== undefined && owner !== processGuid) continue;
    const index = Number(envelope.instance_id ?? '');
    if (!Number.isInteger(index) || index < 0) continue;
    let at: bigint;
    try {
      at = BigInt(envelope.timestamp ?? '0');
    } catch {
      continue;
    }
    const held = latest.get(index);
    if (held && held.at > at) continue;
    latest.set(index, {
      at,
      metrics: {
        index,
        cpuPercentage: gauges.cpu.value ?? 0,
        memoryBytes: BigInt(Math.max(0, Math.round(gauges.memory.value ?? 0))),
        diskBytes: BigInt(Math.max(0, Math.round(gauges.disk?.value ?? 0))),
      },
    });
  }
  return [...latest.values()].map((v) => v.metrics).sort((a, b) => a.index - b.index);
}
