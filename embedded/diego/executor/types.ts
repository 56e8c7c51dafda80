// Shapes shared by the executor's parts and the cell that uses them.

/** One line a container produced, or a progress message the executor emitted for it. */
export interface LogLine {
  /** The log source (STG, APP/PROC/WEB, HEALTH, ...): the action's, else its container's. */
  source: string;
  message: string;
  /** Loggregator's stream names: stdout is OUT, stderr is ERR. */
  stream: 'OUT' | 'ERR';
}

export type LogSink = (line: LogLine) => void;

/** A container port published on a host port of its own on 127.0.0.1. */
export interface PortMapping {
  containerPort: number;
  hostPort: number;
}

/** How an action tree (or one action of it) ended. */
export interface ActionResult {
  failed: boolean;
  /** Empty on success; otherwise what Diego would put in a task's failure_reason. */
  failureReason: string;
}

/** One sample of a container's usage, for container metrics (log-cache gauges). */
export interface ContainerMetricsSample {
  /** CPU time used per wall-clock time since the previous sample; 1 is one core busy. */
  cpuFraction: number;
  /** The same as a percentage, as Diego's container metrics carry it. */
  cpuPercentage: number;
  memoryBytes: number;
  diskBytes: number;
  memoryQuotaBytes: number;
  diskQuotaBytes: number;
}

export type MetricsSink = (sample: ContainerMetricsSample) => void;

/**
 * fn, except that what it throws is handed to onError: a sink or callback that throws must not
 * stop the executor from cleaning up (or crash the process from a stream's event handler).
 */
export function guarded<A extends unknown[]>(fn: (...args: A) => void, onError: (error: unknown) => void): (...args: A) => void {
  return (...args) => {
    try {
      fn(...args);
    } catch (error) {
      onError(error);
    }
  };
}

export const OK: ActionResult = Object.freeze({ failed: false, failureReason: '' });

export function failure(failureReason: string): ActionResult {
  return { failed: true, failureReason };
}

/** The reason every step of a cancelled tree reports. */
export const CANCELLED_REASON = 'cancelled';

/** A URL as it may appear in a log line or a failure reason: no credentials, no query (signed URLs carry tokens there). */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '<invalid URL>';
  }
}

/** Durations the way Go prints them in Diego's messages (1m0s, 1.5s, 250ms). */
export function goDuration(ms: number): string {
  if (ms <= 0) return '0s';
  if (ms < 1000) return `${trimNumber(ms)}ms`;
  const hours = Math.floor(ms / 3_600_000);
  const minutes = Math.floor((ms % 3_600_000) / 60_000);
  const seconds = (ms % 60_000) / 1000;
  let text = '';
  if (hours > 0) text += `${hours}h`;
  if (hours > 0 || minutes > 0) text += `${minutes}m`;
  return `${text}${trimNumber(seconds)}s`;
}

function trimNumber(value: number): string {
  return String(Number(value.toFixed(3)));
}

/** Sizes the way Diego's download and upload messages print them (B, K, M, G with one decimal). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value}${units[unit]}` : `${value.toFixed(1)}${units[unit]}`;
}
