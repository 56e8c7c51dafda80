// Uploads for Upload actions: the file is first copied out of the container into a host file
// (its size and MD5 must be known: the cc-uploader wants Content-Length, and Diego sends
// Content-MD5), then POSTed. Like Diego's uploader it tries a few times before failing.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../../lib/log.js';
import { bodyExcerpt, deadline, httpCall } from './http.js';
import { displayUrl } from './types.js';

export interface UploaderOptions {
  logger: Logger;
  /** Bound on one attempt, body and answer. */
  timeoutMs: number;
  attempts: number;
  retryDelayMs: number;
}

export interface UploadRequest {
  file: string;
  url: string;
  signal: AbortSignal;
}

export interface Uploader {
  upload(request: UploadRequest): Promise<{ size: number }>;
}

export class UploadError extends Error {
  override name = 'UploadError';
}

export function createUploader(options: UploaderOptions): Uploader {
  const log = options.logger.child({ session: 'executor.upload' });
  return {
    async upload(request) {
      const { size } = await stat(request.file);
      const md5 = createHash('md5');
      for await (const chunk of createReadStream(request.file) as AsyncIterable<Buffer>) md5.update(chunk);
      const contentMd5 = md5.digest('base64');
      let lastError = '';
      for (let attempt = 1; attempt <= options.attempts; attempt += 1) {
        request.signal.throwIfAborted();
        const limit = deadline(request.signal, options.timeoutMs);
        try {
          const response = await httpCall({
            method: 'POST',
            url: request.url,
            headers: { 'content-type': 'application/octet-stream', 'content-length': size, 'content-md5': contentMd5 },
            body: createReadStream(request.file),
            signal: limit.signal,
          });
          const status = response.statusCode ?? 0;
          const excerpt = await bodyExcerpt(response).catch(() => '');
          if (status >= 200 && status <= 299) return { size };
          lastError = `POST ${displayUrl(request.url)}: HTTP ${status}${excerpt ? `: ${excerpt}` : ''}`;
        } catch (error) {
          if (request.signal.aborted) throw error;
          lastError = (error as Error).message;
        } finally {
          limit.clear();
        }
        log.info({ attempt, url: displayUrl(request.url), error: lastError }, 'upload-attempt-failed');
        if (attempt < options.attempts) await sleep(options.retryDelayMs, undefined, { signal: request.signal }).catch(() => undefined);
      }
      throw new UploadError(lastError);
    },
  };
}
