// App logs, read from the log-cache read API (the embedded Diego serves one beside the BBS):
// recent lines, and following new ones by polling with start_time — log-cache has no push
// stream. A poll reads from the newest timestamp seen so far, inclusive, and drops envelopes it
// has already shown at exactly that timestamp, so nothing is shown twice or skipped.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Envelope } from '../clients/logcache/client.js';
import { CliError } from './errors.js';
import { exchange, type FetchLike } from './http.js';

export type { Envelope };

/** log-cache answers at most this many envelopes per read. */
export const MAX_READ = 1000;
/** Pages read back to back within one poll before waiting again (a burst is caught up, bounded). */
const MAX_PAGES_PER_POLL = 20;

export interface LogCacheReaderOptions {
  /** e.g. http://127.0.0.1:8889 */
  url: string;
  timeoutMs: number;
  fetch?: FetchLike;
}

export interface ReadQuery {
  /** Nanoseconds since the epoch, inclusive. */
  startTime?: bigint;
  limit?: number;
  descending?: boolean;
}

export type LogCacheReader = ReturnType<typeof createLogCacheReader>;

export function createLogCacheReader(options: LogCacheReaderOptions) {
  const baseUrl = options.url.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? fetch;
  return {
    baseUrl,
    /** Log envelopes of one source id. */
    async read(sourceId: string, query: ReadQuery = {}, signal?: AbortSignal): Promise<Envelope[]> {
      const params = new URLSearchParams({ envelope_types: 'LOG' });
      if (query.startTime !== undefined) params.set('start_time', query.startTime.toString());
      params.set('limit', String(query.limit ?? MAX_READ));
      if (query.descending) params.set('descending', 'true');
      const path = `/api/v1/read/${encodeURIComponent(sourceId)}?${params}`;
      const answer = await exchange(fetchImpl, { server: 'log-cache', baseUrl, method: 'GET', path, timeoutMs: options.timeoutMs, signal });
      if (answer.status !== 200) {
        const message = (answer.json as { message?: string } | undefined)?.message ?? answer.text.trim().slice(0, 200);
        throw new CliError(`log-cache at ${baseUrl} answered ${answer.status}${message ? `: ${message}` : ''}`);
      }
      const batch = (answer.json as { envelopes?: { batch?: Envelope[] } } | undefined)?.envelopes?.batch;
      if (!Array.isArray(batch)) throw new CliError(`log-cache at ${baseUrl} answered something that is not a batch of envelopes`);
      return batch.filter((envelope) => envelope.log !== undefined && typeof envelope.timestamp === 'string' && /^\d+$/.test(envelope.timestamp));
    },
  };
}

/** Nanoseconds since the epoch of a time in milliseconds. */
export const nanosOf = (ms: number) => BigInt(Math.floor(ms)) * 1_000_000n;

export function sourceTypeOf(envelope: Envelope): string {
  return envelope.tags?.source_type ?? '';
}

/** Staging lines have source type STG; lines without a source type are shown too rather than lost. */
export function isStagingLine(envelope: Envelope): boolean {
  const source = sourceTypeOf(envelope);
  return source === '' || source.startsWith('STG');
}

/** The text of a log envelope, one string per line, without the line ends. */
export function linesOf(envelope: Envelope): string[] {
  const text = Buffer.from(envelope.log?.payload ?? '', 'base64').toString('utf8');
  return text.replace(/\r?\n$/, '').split(/\r?\n/);
}

/** `2026-01-01T00:00:00.123Z [APP/PROC/WEB/0] OUT text`, as `cf logs` writes lines. */
export function formatLogLines(envelope: Envelope): string[] {
  const at = new Date(Number(BigInt(envelope.timestamp!) / 1_000_000n)).toISOString();
  const origin = [sourceTypeOf(envelope), envelope.instance_id ?? ''].filter((part) => part !== '').join('/') || '-';
  const stream = envelope.log?.type === 'ERR' ? 'ERR' : 'OUT';
  return linesOf(envelope).map((line) => `${at} [${origin}] ${stream} ${line}`);
}

const keyOf = (envelope: Envelope) => `${envelope.instance_id ?? ''}\u0000${envelope.tags?.source_type ?? ''}\u0000${envelope.log?.type ?? ''}\u0000${envelope.log?.payload ?? ''}`;

export interface FollowOptions {
  reader: LogCacheReader;
  sourceId: string;
  /** Nanoseconds since the epoch: envelopes from then on are delivered. */
  startTime: bigint;
  /** Envelopes already delivered at exactly startTime (after reading recent lines). */
  alreadySeen?: readonly Envelope[];
  intervalMs: number;
  deliver(envelope: Envelope): void;
  /** A failed read; following goes on. Called once per distinct message. */
  onError(error: unknown): void;
}

export interface Follower {
  /** Stops polling after one last read (lines written just before the end are not lost). */
  stop(): Promise<void>;
}

export function followLogs(options: FollowOptions): Follower {
  let cursor = options.startTime;
  let seenAtCursor = new Set((options.alreadySeen ?? []).filter((e) => BigInt(e.timestamp!) === cursor).map(keyOf));
  const stopping = new AbortController();
  let lastError = '';

  async function poll(signal?: AbortSignal): Promise<void> {
    for (let page = 0; page < MAX_PAGES_PER_POLL; page++) {
      const batch = await options.reader.read(options.sourceId, { startTime: cursor, limit: MAX_READ }, signal);
      let fresh = 0;
      for (const envelope of batch) {
        const at = BigInt(envelope.timestamp!);
        if (at < cursor) continue;
        const key = keyOf(envelope);
        if (at === cursor && seenAtCursor.has(key)) continue;
        if (at > cursor) {
          cursor = at;
          seenAtCursor = new Set();
        }
        seenAtCursor.add(key);
        fresh++;
        options.deliver(envelope);
      }
      if (batch.length < MAX_READ) return;
      // A whole page at one timestamp, all seen: step past it rather than read it forever.
      if (fresh === 0) {
        cursor += 1n;
        seenAtCursor = new Set();
      }
    }
  }

  async function pollReporting(signal?: AbortSignal): Promise<void> {
    try {
      await poll(signal);
      lastError = '';
    } catch (error) {
      if (signal?.aborted) return;
      const message = error instanceof Error ? error.message : String(error);
      if (message !== lastError) options.onError(error);
      lastError = message;
    }
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await pollReporting(stopping.signal);
      try {
        await sleep(options.intervalMs, undefined, { signal: stopping.signal });
      } catch {
        // Stopped while waiting.
      }
    }
  })();

  return {
    async stop() {
      stopping.abort();
      await loop;
      await pollReporting();
    },
  };
}
