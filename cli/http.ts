// One HTTP exchange with a deadline, for the API and log-cache alike, with failures turned into
// lines a person can act on: which server, which request, and what the network said (fetch's own
// message is only "fetch failed"; the reason is in its cause).
import { CliError } from './errors.js';

export type FetchLike = typeof fetch;

export interface Exchange {
  /** What the server is called in messages, e.g. "the API" or "log-cache". */
  server: string;
  baseUrl: string;
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: RequestInit['body'];
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface Answer {
  status: number;
  text: string;
  /** The body as JSON; undefined when it is empty or not JSON. */
  json: unknown;
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.message) return cause.message;
  if (cause?.code) return cause.code;
  return (error as Error).message;
}

export function formatMs(ms: number): string {
  if (ms % 60_000 === 0 && ms >= 60_000) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export async function exchange(fetchImpl: FetchLike, call: Exchange): Promise<Answer> {
  const deadline = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([call.signal, deadline]) : deadline;
  const url = call.baseUrl + call.path;
  const fail = (error: unknown): never => {
    if (call.signal?.aborted) throw call.signal.reason;
    if (deadline.aborted) throw new CliError(`${call.server} at ${call.baseUrl} did not answer ${call.method} ${call.path} within ${formatMs(call.timeoutMs)}`);
    throw new CliError(`cannot reach ${call.server} at ${call.baseUrl}: ${networkReason(error)}`);
  };
  let response: Response;
  try {
    response = await fetchImpl(url, { method: call.method, headers: call.headers, body: call.body, signal });
  } catch (error) {
    return fail(error);
  }
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    return fail(error);
  }
  let json: unknown;
  if (text.trim() !== '') {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  return { status: response.status, text, json };
}
