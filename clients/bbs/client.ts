// The BBS client the bridge uses: protobuf over HTTP/1.1 POST, exactly as the BBS's own Go
// client speaks it (body = the request message, `Content-Type: application/x-protobuf`,
// `X-Vcap-Request-Id`, answer = 200 with a message whose field 1 is an Error), plus the event
// streams. Every call has a deadline; only failures that cannot have reached the BBS are retried.
//
// Request bodies are never logged: desired LRP routes carry the container's SSH host key and
// task and LRP definitions carry registry passwords.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { ActualLRP, type ActualLRPKey } from '../../gen/diego/bbs/v1/actual_lrp.js';
import {
  ActualLRPLifecycleResponse,
  ActualLRPsByProcessGuidsRequest,
  ActualLRPsRequest,
  RetireActualLRPRequest,
} from '../../gen/diego/bbs/v1/actual_lrp_requests.js';
import { CellPresence } from '../../gen/diego/bbs/v1/cells.js';
import { DesiredLRP, type DesiredLRPSchedulingInfo, type DesiredLRPUpdate } from '../../gen/diego/bbs/v1/desired_lrp.js';
import {
  DesiredLRPByProcessGuidRequest,
  DesiredLRPLifecycleResponse,
  DesiredLRPResponse,
  DesiredLRPsRequest,
  DesireLRPRequest,
  RemoveDesiredLRPRequest,
  UpdateDesiredLRPRequest,
} from '../../gen/diego/bbs/v1/desired_lrp_requests.js';
import { DomainsResponse, UpsertDomainRequest, UpsertDomainResponse } from '../../gen/diego/bbs/v1/domain.js';
import { Error_Type, type Error as BbsWireError } from '../../gen/diego/bbs/v1/error.js';
import { EventsByCellId } from '../../gen/diego/bbs/v1/events.js';
import { PingResponse } from '../../gen/diego/bbs/v1/ping.js';
import { Task, type TaskDefinition } from '../../gen/diego/bbs/v1/task.js';
import {
  DesireTaskRequest,
  TaskByGuidRequest,
  TaskGuidRequest,
  TaskLifecycleResponse,
  TaskResponse,
  TasksRequest,
} from '../../gen/diego/bbs/v1/task_requests.js';
import type { Logger } from '../../lib/log.js';
import { BbsError, BbsInvalidResponseError, BbsUnavailableError, bbsErrorFromWire } from './errors.js';
import {
  abortableSleep,
  openEventStream,
  resubscribing,
  type BackoffOptions,
  type BbsEventStream,
  type EventEndpoint,
  type ResubscribingEventStream,
} from './events.js';
import { createListDecoder, TruncatedMessageError, type MessageDecoder } from './list-decoder.js';
import { schedulingInfoDecoder } from './scheduling-info-decoder.js';
import { LRP_INSTANCE_EVENT_TYPES, TASK_EVENT_TYPES, type LrpInstanceEvent, type TaskEvent } from './sse.js';

/** PEM text, a path to a PEM file, or the bytes. */
export type PemSource = string | Buffer;

export interface BbsTlsOptions {
  /** CA bundle that signed the BBS's certificate. */
  ca?: PemSource;
  /** Client certificate and key: a real BBS requires them (mTLS since Diego 2.0). */
  cert?: PemSource;
  key?: PemSource;
  /** Name to verify the server certificate against, when it differs from the URL's host. */
  serverName?: string;
  /** Skip verifying the server certificate (the Go client's NewSecureSkipVerifyClient). */
  skipVerify?: boolean;
}

export interface BbsRetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  /** Wait between attempts. */
  delayMs: number;
}

export interface BbsResubscribeOptions {
  backoff?: BackoffOptions;
  maxConsecutiveFailures?: number;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

export interface BbsClientOptions {
  /** e.g. http://127.0.0.1:8889 (embedded) or https://bbs.service.cf.internal:8889. */
  url: string;
  logger: Logger;
  /** Deadline of a call that sets none itself. */
  timeoutMs?: number;
  /** Required for https URLs that need a client certificate; rejected for http URLs. */
  tls?: BbsTlsOptions;
  retry?: Partial<BbsRetryOptions>;
  /** Keep-alive connections per BBS; Cloud Controller drives the BBS from a 50-thread pool. */
  maxSockets?: number;
  /** How the watch* streams come back after a drop. */
  resubscribe?: BbsResubscribeOptions;
}

export interface BbsCallOptions {
  /** X-Vcap-Request-Id; a fresh UUID when absent. */
  requestId?: string;
  /** This call's deadline, retries and waits included. */
  timeoutMs?: number;
  /** Cancels the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface TaskFilter {
  domain?: string;
  cellId?: string;
}

export interface DesiredLrpFilter {
  domain?: string;
  processGuids?: readonly string[];
}

export interface DesiredLrpListFilter extends DesiredLrpFilter {
  appGuids?: readonly string[];
}

export interface ActualLrpFilter {
  domain?: string;
  cellId?: string;
  processGuid?: string;
  /** Has presence: 0 is a real filter, absent means every index. */
  index?: number;
}

export interface SubscribeOptions {
  requestId?: string;
  /** Deadline for the BBS to accept the subscription. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface InstanceSubscribeOptions extends SubscribeOptions {
  /** Only events of instances on this cell (desired LRP events always come). */
  cellId?: string;
}

export interface WatchOptions {
  cellId?: string;
  /** Closes the stream when aborted. */
  signal?: AbortSignal;
}

export interface BbsClient {
  /** POST /v1/ping: whether the BBS says it is available. Rejects when it cannot be reached. */
  ping(options?: BbsCallOptions): Promise<boolean>;
  /** POST /v1/domains/upsert: marks the domain fresh for `ttlSeconds` (0 = for ever). */
  upsertDomain(domain: string, ttlSeconds: number, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/domains/list: the fresh domains. */
  domains(options?: BbsCallOptions): Promise<string[]>;

  /** POST /v1/tasks/desire.r2. */
  desireTask(taskGuid: string, domain: string, definition: TaskDefinition, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/tasks/cancel. */
  cancelTask(taskGuid: string, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/tasks/get_by_task_guid.r3. */
  taskByGuid(taskGuid: string, options?: BbsCallOptions): Promise<Task>;
  /** POST /v1/tasks/list.r3. */
  tasks(filter?: TaskFilter, options?: BbsCallOptions): Promise<Task[]>;

  /** POST /v1/desired_lrp/desire.r2. */
  desireLrp(desiredLrp: DesiredLRP, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/desired_lrp/update. */
  updateDesiredLrp(processGuid: string, update: DesiredLRPUpdate, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/desired_lrp/remove. */
  removeDesiredLrp(processGuid: string, options?: BbsCallOptions): Promise<void>;
  /** POST /v1/desired_lrps/get_by_process_guid.r3. */
  desiredLrpByProcessGuid(processGuid: string, options?: BbsCallOptions): Promise<DesiredLRP>;
  /** POST /v1/desired_lrps/list.r3. */
  desiredLrps(filter?: DesiredLrpListFilter, options?: BbsCallOptions): Promise<DesiredLRP[]>;
  /** POST /v1/desired_lrp_scheduling_infos/list: what bulk sync compares against. */
  desiredLrpSchedulingInfos(filter?: DesiredLrpFilter, options?: BbsCallOptions): Promise<DesiredLRPSchedulingInfo[]>;

  /** POST /v1/actual_lrps/list. */
  actualLrps(filter?: ActualLrpFilter, options?: BbsCallOptions): Promise<ActualLRP[]>;
  /** POST /v1/actual_lrps/list_by_process_guids. */
  actualLrpsByProcessGuids(processGuids: readonly string[], options?: BbsCallOptions): Promise<ActualLRP[]>;
  /** POST /v1/actual_lrps/retire: stops one instance; convergence replaces it while desired. */
  retireActualLrp(key: ActualLRPKey, options?: BbsCallOptions): Promise<void>;

  /** POST /v1/cells/list.r1. */
  cells(options?: BbsCallOptions): Promise<CellPresence[]>;

  /** One subscription to /v1/events/lrp_instances.r1; resolves once the BBS accepted it. */
  subscribeToInstanceEvents(options?: InstanceSubscribeOptions): Promise<BbsEventStream<LrpInstanceEvent>>;
  /** One subscription to /v1/events/tasks.r1. */
  subscribeToTaskEvents(options?: SubscribeOptions): Promise<BbsEventStream<TaskEvent>>;
  /** Instance events that survive drops, marking each reconnect with `{ type: 'resubscribed' }`. */
  watchInstanceEvents(options?: WatchOptions): ResubscribingEventStream<LrpInstanceEvent>;
  /** Task events that survive drops. */
  watchTaskEvents(options?: Omit<WatchOptions, 'cellId'>): ResubscribingEventStream<TaskEvent>;

  /** Closes idle connections; event streams are closed by their owners. */
  close(): void;
}

// Ports, declared here for the consumers that take only what they use.
export type BbsTasks = Pick<BbsClient, 'desireTask' | 'cancelTask' | 'taskByGuid'>;
export type BbsTaskSync = Pick<BbsClient, 'tasks' | 'taskByGuid' | 'cancelTask' | 'upsertDomain'>;
export type BbsDesiredLrps = Pick<BbsClient, 'desireLrp' | 'updateDesiredLrp' | 'removeDesiredLrp' | 'desiredLrpByProcessGuid'>;
export type BbsLrpSync = Pick<BbsClient, 'desiredLrpSchedulingInfos' | 'desireLrp' | 'updateDesiredLrp' | 'removeDesiredLrp' | 'upsertDomain'>;
export type BbsInstances = Pick<BbsClient, 'actualLrps' | 'actualLrpsByProcessGuids' | 'retireActualLrp'>;
export type BbsInstanceEvents = Pick<BbsClient, 'watchInstanceEvents'>;
export type BbsReadiness = Pick<BbsClient, 'ping'>;

/** A client option that cannot work; reported at start-up. */
export class BbsClientConfigError extends Error {
  override name = 'BbsClientConfigError';
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRY: BbsRetryOptions = { attempts: 3, delayMs: 500 };
export const DEFAULT_MAX_SOCKETS = 50;

export const BBS_ROUTES = {
  ping: '/v1/ping',
  domains: '/v1/domains/list',
  upsertDomain: '/v1/domains/upsert',
  desireTask: '/v1/tasks/desire.r2',
  cancelTask: '/v1/tasks/cancel',
  taskByGuid: '/v1/tasks/get_by_task_guid.r3',
  tasks: '/v1/tasks/list.r3',
  desireLrp: '/v1/desired_lrp/desire.r2',
  updateDesiredLrp: '/v1/desired_lrp/update',
  removeDesiredLrp: '/v1/desired_lrp/remove',
  desiredLrpByProcessGuid: '/v1/desired_lrps/get_by_process_guid.r3',
  desiredLrps: '/v1/desired_lrps/list.r3',
  desiredLrpSchedulingInfos: '/v1/desired_lrp_scheduling_infos/list',
  actualLrps: '/v1/actual_lrps/list',
  actualLrpsByProcessGuids: '/v1/actual_lrps/list_by_process_guids',
  retireActualLrp: '/v1/actual_lrps/retire',
  cells: '/v1/cells/list.r1',
  instanceEvents: '/v1/events/lrp_instances.r1',
  taskEvents: '/v1/events/tasks.r1',
} as const;

function loadPem(source: PemSource | undefined, what: string): Buffer | undefined {
  if (source === undefined) return undefined;
  if (Buffer.isBuffer(source)) return source;
  if (source.includes('-----BEGIN')) return Buffer.from(source);
  try {
    return readFileSync(source);
  } catch (error) {
    throw new BbsClientConfigError(`cannot read the BBS ${what} file ${source}: ${(error as Error).message}`);
  }
}

/** Collects a response's bytes and decodes them once they are all in. */
interface ResponseSink<T> {
  push(chunk: Buffer): void;
  finish(): T;
}

function wholeMessage<T>(fns: MessageDecoder<T>): () => ResponseSink<T> {
  return () => {
    const chunks: Buffer[] = [];
    return {
      push: (chunk) => void chunks.push(chunk),
      finish: () => fns.decode(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)),
    };
  };
}

function listOf<T>(item: MessageDecoder<T>): () => ResponseSink<{ error?: BbsWireError; items: T[] }> {
  return () => createListDecoder(item);
}

/** A transport failure that happened before any byte of the answer: the BBS did nothing. */
class RetryableTransportError extends Error {}

export function createBbsClient(options: BbsClientOptions): BbsClient {
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new BbsClientConfigError(`the BBS URL ${JSON.stringify(options.url)} is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new BbsClientConfigError(`the BBS URL must be http or https, not ${base.protocol}`);
  const secure = base.protocol === 'https:';
  if (options.tls && !secure) throw new BbsClientConfigError('TLS options were given for a plain-http BBS URL');
  const tls = secure
    ? {
        ca: loadPem(options.tls?.ca, 'CA'),
        cert: loadPem(options.tls?.cert, 'client certificate'),
        key: loadPem(options.tls?.key, 'client key'),
        servername: options.tls?.serverName,
        rejectUnauthorized: !(options.tls?.skipVerify ?? false),
      }
    : undefined;
  if (tls && (tls.cert === undefined) !== (tls.key === undefined)) throw new BbsClientConfigError('the BBS client certificate and key go together');

  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const retry: BbsRetryOptions = { ...DEFAULT_RETRY, ...options.retry };
  if (!(retry.attempts >= 1)) throw new BbsClientConfigError('BBS retry attempts must be at least 1');
  const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets, ca: tls?.ca, cert: tls?.cert, key: tls?.key, servername: tls?.servername, rejectUnauthorized: tls?.rejectUnauthorized })
    : new HttpAgent({ keepAlive: true, maxSockets });
  const send = secure ? httpsRequest : httpRequest;
  const basePath = base.pathname.replace(/\/+$/, '');
  const hostname = base.hostname.replace(/^\[|\]$/g, '');
  const logger = options.logger;
  const endpoint: EventEndpoint = { url: base, tls };

  function attempt<T>(route: string, body: Uint8Array, requestId: string, signal: AbortSignal, sink: () => ResponseSink<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let responded = false;
      let socket: Socket | undefined;
      let bytesReadBefore = 0;
      const settle = (error: unknown, value?: T) => {
        if (settled) return;
        settled = true;
        if (error === undefined) resolve(value as T);
        else reject(error);
      };
      const req = send({
        protocol: base.protocol,
        hostname,
        port: base.port,
        method: 'POST',
        path: basePath + route,
        headers: {
          'Content-Type': 'application/x-protobuf',
          'Content-Length': String(body.length),
          'X-Vcap-Request-Id': requestId,
        },
        agent,
        signal,
      });
      req.on('socket', (s: Socket) => {
        socket = s;
        // A reused keep-alive socket has read earlier answers; only this answer's bytes count.
        bytesReadBefore = s.bytesRead;
      });
      req.on('response', (res: IncomingMessage) => {
        responded = true;
        const routerError = res.headers['x-cf-routererror'];
        if (routerError !== undefined) {
          res.resume();
          return settle(new BbsError(Error_Type.TYPE_ROUTER_ERROR, String(routerError)));
        }
        if (res.statusCode === 503) {
          res.resume();
          return settle(new BbsUnavailableError('not-serving', `${route} answered 503: the BBS is not serving yet`));
        }
        if (res.statusCode !== 200) {
          res.resume();
          return settle(new BbsInvalidResponseError(res.statusCode ?? 0, `Invalid Response with status code: ${res.statusCode}`));
        }
        const collector = sink();
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          try {
            collector.push(chunk);
          } catch (error) {
            res.destroy();
            settle(new BbsError(Error_Type.TYPE_INVALID_PROTOBUF_MESSAGE, `failed to unmarshal the answer of ${route}: ${(error as Error).message}`));
          }
        });
        res.on('end', () => {
          try {
            settle(undefined, collector.finish());
          } catch (error) {
            const what = error instanceof TruncatedMessageError ? 'a truncated' : 'an undecodable';
            settle(new BbsError(Error_Type.TYPE_INVALID_PROTOBUF_MESSAGE, `${route} sent ${what} answer: ${(error as Error).message}`));
          }
        });
        res.on('error', (error) => settle(new BbsUnavailableError('transport', `reading the answer of ${route} failed: ${error.message}`, { cause: error })));
        res.on('close', () => {
          if (!res.complete) settle(new BbsUnavailableError('transport', `the BBS closed the connection in the middle of the answer to ${route}`));
        });
      });
      req.on('error', (error) => {
        if (settled) return;
        if (signal.aborted) return settle(signal.reason ?? error);
        const sawAnswerBytes = responded || (socket !== undefined && socket.bytesRead > bytesReadBefore);
        if (!sawAnswerBytes) return settle(new RetryableTransportError(error.message, { cause: error }));
        settle(new BbsUnavailableError('transport', `${route} failed: ${error.message}`, { cause: error }));
      });
      req.end(body);
    });
  }

  async function call<T>(route: string, body: Uint8Array, sink: () => ResponseSink<T>, callOptions: BbsCallOptions = {}): Promise<T> {
    const requestId = callOptions.requestId ?? randomUUID();
    const timeoutMs = callOptions.timeoutMs ?? defaultTimeoutMs;
    callOptions.signal?.throwIfAborted();
    // One signal for the whole call: the deadline spans every attempt and every wait between.
    const controller = new AbortController();
    const signal = controller.signal;
    const timer = setTimeout(() => controller.abort(new BbsUnavailableError('timeout', `${route} did not answer within ${timeoutMs} ms`)), timeoutMs);
    const onCallerAbort = () => controller.abort(callOptions.signal?.reason);
    callOptions.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const started = performance.now();
    try {
      // Bounded by retry.attempts.
      for (let n = 1; ; n++) {
        try {
          signal.throwIfAborted();
          const result = await attempt(route, body, requestId, signal, sink);
          logger.debug({ route, request_id: requestId, attempt: n, duration_ms: Math.round(performance.now() - started) }, 'bbs-request-completed');
          return result;
        } catch (raw) {
          const error = signal.aborted ? signal.reason : raw;
          if (error instanceof RetryableTransportError) {
            if (n < retry.attempts) {
              logger.info({ route, request_id: requestId, attempt: n, err: error.message }, 'retrying-bbs-request');
              await abortableSleep(retry.delayMs, signal);
              continue;
            }
            const unavailable = new BbsUnavailableError('transport', `${route} did not reach the BBS after ${n} attempts: ${error.message}`, { cause: error.cause });
            logger.warn({ route, request_id: requestId, attempts: n, err: unavailable.message }, 'bbs-request-failed');
            throw unavailable;
          }
          if (error instanceof BbsUnavailableError) logger.warn({ route, request_id: requestId, attempt: n, reason: error.reason, err: error.message }, 'bbs-request-failed');
          else if (error instanceof BbsError) logger.debug({ route, request_id: requestId, error_type: error.typeName, err: error.message }, 'bbs-request-answered-error');
          throw error;
        }
      }
    } finally {
      clearTimeout(timer);
      callOptions.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** Throws the typed error for an in-band error, if there is one. */
  function check(response: { error?: BbsWireError }): void {
    if (response.error) throw bbsErrorFromWire(response.error);
  }

  const EMPTY = new Uint8Array(0);
  const encode = <T>(fns: { encode(message: T): { finish(): Uint8Array } }, message: T) => fns.encode(message).finish();

  async function lifecycle<T extends { error?: BbsWireError }>(route: string, body: Uint8Array, fns: MessageDecoder<T>, callOptions?: BbsCallOptions): Promise<void> {
    check(await call(route, body, wholeMessage(fns), callOptions));
  }

  async function list<T>(route: string, body: Uint8Array, item: MessageDecoder<T>, callOptions?: BbsCallOptions): Promise<T[]> {
    const response = await call(route, body, listOf(item), callOptions);
    check(response);
    return response.items;
  }

  const resubscribe = options.resubscribe ?? {};

  const client: BbsClient = {
    async ping(callOptions) {
      return (await call(BBS_ROUTES.ping, EMPTY, wholeMessage(PingResponse), callOptions)).available;
    },

    async upsertDomain(domain, ttlSeconds, callOptions) {
      const body = encode(UpsertDomainRequest, { domain, ttl: Math.max(0, Math.floor(ttlSeconds)) });
      await lifecycle(BBS_ROUTES.upsertDomain, body, UpsertDomainResponse, callOptions);
    },

    async domains(callOptions) {
      const response = await call(BBS_ROUTES.domains, EMPTY, wholeMessage(DomainsResponse), callOptions);
      check(response);
      return response.domains;
    },

    async desireTask(taskGuid, domain, definition, callOptions) {
      const body = encode(DesireTaskRequest, { taskGuid, domain, taskDefinition: definition });
      await lifecycle(BBS_ROUTES.desireTask, body, TaskLifecycleResponse, callOptions);
    },

    async cancelTask(taskGuid, callOptions) {
      await lifecycle(BBS_ROUTES.cancelTask, encode(TaskGuidRequest, { taskGuid }), TaskLifecycleResponse, callOptions);
    },

    async taskByGuid(taskGuid, callOptions) {
      const response = await call(BBS_ROUTES.taskByGuid, encode(TaskByGuidRequest, { taskGuid }), wholeMessage(TaskResponse), callOptions);
      check(response);
      if (!response.task) throw new BbsError(Error_Type.TYPE_INVALID_RESPONSE, `${BBS_ROUTES.taskByGuid} answered without a task`);
      return response.task;
    },

    tasks(filter = {}, callOptions) {
      const body = encode(TasksRequest, { domain: filter.domain ?? '', cellId: filter.cellId ?? '' });
      return list(BBS_ROUTES.tasks, body, Task, callOptions);
    },

    async desireLrp(desiredLrp, callOptions) {
      await lifecycle(BBS_ROUTES.desireLrp, encode(DesireLRPRequest, { desiredLrp }), DesiredLRPLifecycleResponse, callOptions);
    },

    async updateDesiredLrp(processGuid, update, callOptions) {
      await lifecycle(BBS_ROUTES.updateDesiredLrp, encode(UpdateDesiredLRPRequest, { processGuid, update }), DesiredLRPLifecycleResponse, callOptions);
    },

    async removeDesiredLrp(processGuid, callOptions) {
      await lifecycle(BBS_ROUTES.removeDesiredLrp, encode(RemoveDesiredLRPRequest, { processGuid }), DesiredLRPLifecycleResponse, callOptions);
    },

    async desiredLrpByProcessGuid(processGuid, callOptions) {
      const body = encode(DesiredLRPByProcessGuidRequest, { processGuid });
      const response = await call(BBS_ROUTES.desiredLrpByProcessGuid, body, wholeMessage(DesiredLRPResponse), callOptions);
      check(response);
      if (!response.desiredLrp) throw new BbsError(Error_Type.TYPE_INVALID_RESPONSE, `${BBS_ROUTES.desiredLrpByProcessGuid} answered without a desired LRP`);
      return response.desiredLrp;
    },

    desiredLrps(filter = {}, callOptions) {
      const body = encode(DesiredLRPsRequest, { domain: filter.domain ?? '', processGuids: [...(filter.processGuids ?? [])], appGuids: [...(filter.appGuids ?? [])] });
      return list(BBS_ROUTES.desiredLrps, body, DesiredLRP, callOptions);
    },

    desiredLrpSchedulingInfos(filter = {}, callOptions) {
      const body = encode(DesiredLRPsRequest, { domain: filter.domain ?? '', processGuids: [...(filter.processGuids ?? [])], appGuids: [] });
      return list(BBS_ROUTES.desiredLrpSchedulingInfos, body, schedulingInfoDecoder, callOptions);
    },

    actualLrps(filter = {}, callOptions) {
      const body = encode(ActualLRPsRequest, {
        domain: filter.domain ?? '',
        cellId: filter.cellId ?? '',
        processGuid: filter.processGuid ?? '',
        ...(filter.index === undefined ? {} : { index: filter.index }),
      });
      return list(BBS_ROUTES.actualLrps, body, ActualLRP, callOptions);
    },

    actualLrpsByProcessGuids(processGuids, callOptions) {
      const body = encode(ActualLRPsByProcessGuidsRequest, { processGuids: [...processGuids] });
      return list(BBS_ROUTES.actualLrpsByProcessGuids, body, ActualLRP, callOptions);
    },

    async retireActualLrp(key, callOptions) {
      await lifecycle(BBS_ROUTES.retireActualLrp, encode(RetireActualLRPRequest, { actualLrpKey: key }), ActualLRPLifecycleResponse, callOptions);
    },

    cells(callOptions) {
      return list(BBS_ROUTES.cells, EMPTY, CellPresence, callOptions);
    },

    subscribeToInstanceEvents(subscribeOptions = {}) {
      return openEventStream<LrpInstanceEvent>({
        endpoint,
        route: BBS_ROUTES.instanceEvents,
        body: encode(EventsByCellId, { cellId: subscribeOptions.cellId ?? '' }),
        accepted: LRP_INSTANCE_EVENT_TYPES,
        logger,
        timeoutMs: subscribeOptions.timeoutMs ?? defaultTimeoutMs,
        requestId: subscribeOptions.requestId,
        signal: subscribeOptions.signal,
      });
    },

    subscribeToTaskEvents(subscribeOptions = {}) {
      return openEventStream<TaskEvent>({
        endpoint,
        route: BBS_ROUTES.taskEvents,
        // The Go client sends an (empty) EventsByCellId to every event route.
        body: encode(EventsByCellId, { cellId: '' }),
        accepted: TASK_EVENT_TYPES,
        logger,
        timeoutMs: subscribeOptions.timeoutMs ?? defaultTimeoutMs,
        requestId: subscribeOptions.requestId,
        signal: subscribeOptions.signal,
      });
    },

    watchInstanceEvents(watchOptions = {}) {
      return resubscribing((signal) => client.subscribeToInstanceEvents({ cellId: watchOptions.cellId, signal }), {
        logger: logger.child({ session: 'bbs.instance-events' }),
        ...resubscribe,
        signal: watchOptions.signal,
      });
    },

    watchTaskEvents(watchOptions = {}) {
      return resubscribing((signal) => client.subscribeToTaskEvents({ signal }), {
        logger: logger.child({ session: 'bbs.task-events' }),
        ...resubscribe,
        signal: watchOptions.signal,
      });
    },

    close() {
      agent.destroy();
    },
  };
  return client;
}
