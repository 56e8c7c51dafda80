// Following CC's droplet upload job to its end (spec §9 step 7). CC answers an async upload with
// a job; `queued`/`running` mean "ask again after the polling interval", `finished` is success,
// `failed` and anything unknown are failures. Polls carry no credentials (as the original's did),
// each has its own deadline, and the whole loop is bounded by the upload's cancellation signal.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../lib/log.js';
import { abortMessage, readBounded } from './cc-upload.js';
import { withoutCredentials } from './upload-url.js';

export interface CcJob {
  guid: string;
  url: string;
  status: string;
}

export class JobPollError extends Error {
  override name = 'JobPollError';
}

/** A job from CC's JSON, read as Go's decoder reads it into its struct (keys in any case). */
export function parseCcJob(text: string): CcJob {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new JobPollError(`invalid job JSON from CC: ${(error as Error).message}`);
  }
  const object = (value: unknown, where: string): Record<string, unknown> => {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) throw new JobPollError(`invalid job JSON from CC: ${where} is not an object`);
    return value as Record<string, unknown>;
  };
  const field = (from: Record<string, unknown>, name: string, where: string): string => {
    const key = Object.keys(from).find((k) => k.toLowerCase() === name);
    const value = key === undefined ? undefined : from[key];
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string') throw new JobPollError(`invalid job JSON from CC: ${where}.${name} is not a string`);
    return value;
  };
  const root = object(parsed, 'the body');
  const keyOf = (name: string) => Object.keys(root).find((k) => k.toLowerCase() === name);
  const metadata = object(root[keyOf('metadata') ?? 'metadata'], 'metadata');
  const entity = object(root[keyOf('entity') ?? 'entity'], 'entity');
  return { guid: field(metadata, 'guid', 'metadata'), url: field(metadata, 'url', 'metadata'), status: field(entity, 'status', 'entity') };
}

/** The job's URL; a URL without a host takes scheme and host from the upload URL (no credentials). */
export function jobUrl(job: CcJob, uploadUrl: URL): URL {
  let url: URL;
  try {
    url = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(job.url) ? new URL(job.url) : new URL(job.url, `${uploadUrl.protocol}//${uploadUrl.host}`);
  } catch {
    throw new JobPollError(`invalid job URL from CC: ${JSON.stringify(withoutCredentials(job.url))}`);
  }
  url.username = '';
  url.password = '';
  return url;
}

export interface PollSettings {
  intervalMs: number;
  /** Deadline of each poll request. */
  requestTimeoutMs: number;
  skipCertVerify: boolean;
  /** CC's CA and the client certificate presented to CC (PEM contents). */
  ccTls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  maxResponseBytes: number;
}

/** Resolves when the job finished; throws JobPollError with the text to answer otherwise. */
export async function pollCcJob(first: CcJob, uploadUrl: URL, signal: AbortSignal, settings: PollSettings, logger: Logger): Promise<void> {
  let job = first;
  const url = jobUrl(first, uploadUrl);
  for (let polls = 0; ; polls++) {
    switch (job.status) {
      case 'finished':
        logger.info({ job_guid: job.guid, polls }, 'job-finished');
        return;
      case 'failed':
        throw new JobPollError('upload job failed');
      case 'queued':
      case 'running':
        break;
      default:
        throw new JobPollError(`unknown job status: ${job.status}`);
    }
    try {
      await sleep(settings.intervalMs, undefined, { signal });
    } catch {
      throw new JobPollError(abortMessage(signal, 'job polling'));
    }
    logger.debug({ job_guid: job.guid, job_url: url.href, status: job.status }, 'polling-job');
    job = await fetchJob(url, signal, settings);
  }
}

async function fetchJob(url: URL, cancel: AbortSignal, settings: PollSettings): Promise<CcJob> {
  const deadline = AbortSignal.timeout(settings.requestTimeoutMs);
  const signal = AbortSignal.any([cancel, deadline]);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  let response: IncomingMessage;
  let body: string;
  try {
    response = await new Promise<IncomingMessage>((resolve, reject) => {
      const outbound = send(url, { method: 'GET', signal, agent: false, rejectUnauthorized: !settings.skipCertVerify, ca: settings.ccTls?.ca, cert: settings.ccTls?.cert, key: settings.ccTls?.key }, resolve);
      outbound.once('error', reject);
      outbound.end();
    });
    body = await readBounded(response, settings.maxResponseBytes);
  } catch (error) {
    if (cancel.aborted) throw new JobPollError(abortMessage(cancel, 'job polling'));
    if (deadline.aborted) throw new JobPollError(`Get ${JSON.stringify(url.href)}: no answer within ${settings.requestTimeoutMs}ms`);
    throw new JobPollError(`Get ${JSON.stringify(url.href)}: ${(error as Error).message}`);
  }
  // Go decoded whatever came back; a non-2xx answer is reported as such rather than as a
  // puzzling "unknown job status".
  if ((response.statusCode ?? 0) < 200 || (response.statusCode ?? 0) >= 300) {
    throw new JobPollError(`status code: ${response.statusCode}\n${body}`);
  }
  return parseCcJob(body);
}
