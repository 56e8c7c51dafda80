// The conditional-request and Range rules of Go's http.ServeContent (RFC 7232 §6, RFC 7233),
// as pure functions of the request headers, the method and the file's modification time. The
// file server sets no ETag, so entity-tag conditions can only match `*`.

export interface ByteRange {
  start: number;
  length: number;
}

export type RangeRequest =
  | { kind: 'none' }
  | { kind: 'ranges'; ranges: ByteRange[] }
  /** A malformed header: 416 `invalid range`. */
  | { kind: 'invalid' }
  /** Every range starts past the end: 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'no-overlap' };

/** Go's parseRange. Ranges are kept in request order; overlapping ones are not merged (as in Go). */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined || header === '') return { kind: 'none' };
  const prefix = 'bytes=';
  if (!header.startsWith(prefix)) return { kind: 'invalid' };
  const ranges: ByteRange[] = [];
  let noOverlap = false;
  for (const part of header.slice(prefix.length).split(',')) {
    const spec = part.trim();
    if (spec === '') continue;
    const dash = spec.indexOf('-');
    if (dash < 0) return { kind: 'invalid' };
    const startText = spec.slice(0, dash).trim();
    const endText = spec.slice(dash + 1).trim();
    if (startText === '') {
      // A suffix: the last N bytes.
      const suffix = parseNonNegative(endText);
      if (suffix === undefined) return { kind: 'invalid' };
      const length = Math.min(suffix, size);
      ranges.push({ start: size - length, length });
      continue;
    }
    const start = parseNonNegative(startText);
    if (start === undefined) return { kind: 'invalid' };
    if (start >= size) {
      noOverlap = true;
      continue;
    }
    if (endText === '') {
      ranges.push({ start, length: size - start });
      continue;
    }
    const end = parseNonNegative(endText);
    if (end === undefined || start > end) return { kind: 'invalid' };
    ranges.push({ start, length: Math.min(end, size - 1) - start + 1 });
  }
  if (noOverlap && ranges.length === 0) return { kind: 'no-overlap' };
  // Asking for more bytes in total than the file has is answered with the whole file (Go).
  if (ranges.reduce((sum, r) => sum + r.length, 0) > size) return { kind: 'none' };
  return ranges.length === 0 ? { kind: 'none' } : { kind: 'ranges', ranges };
}

function parseNonNegative(text: string): number | undefined {
  if (!/^\+?\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.start + range.length - 1}/${size}`;
}

/** Go's http.ParseTime: the three date formats HTTP/1.1 allows; undefined when none matches. */
export function parseHttpDate(text: string): Date | undefined {
  const months = 'JanFebMarAprMayJunJulAugSepOctNovDec';
  const month = (name: string) => {
    const at = months.indexOf(name);
    return at >= 0 && at % 3 === 0 ? at / 3 : -1;
  };
  const make = (year: number, mon: number, day: number, h: string, m: string, s: string): Date | undefined => {
    if (mon < 0) return undefined;
    const date = new Date(Date.UTC(year, mon, day, Number(h), Number(m), Number(s)));
    return date.getUTCDate() === day && Number(h) < 24 && Number(m) < 60 && Number(s) < 60 ? date : undefined;
  };
  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
  let match = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(text);
  if (match) return make(Number(match[4]), month(match[3]!), Number(match[2]), match[5]!, match[6]!, match[7]!);
  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
  match = /^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/.exec(text);
  if (match) {
    const twoDigits = Number(match[4]);
    return make(twoDigits < 69 ? 2000 + twoDigits : 1900 + twoDigits, month(match[3]!), Number(match[2]), match[5]!, match[6]!, match[7]!);
  }
  // ANSI C asctime: Sun Nov  6 08:49:37 1994
  match = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/.exec(text);
  if (match) return make(Number(match[7]), month(match[2]!), Number(match[3]!.trim()), match[4]!, match[5]!, match[6]!);
  return undefined;
}

/** Last-Modified as Go writes it, or undefined for the times Go leaves out (zero, the Unix epoch). */
export function lastModifiedHeader(modified: Date): string | undefined {
  return modified.getTime() <= 0 ? undefined : modified.toUTCString();
}

export type Precondition =
  | { outcome: 'not-modified' }
  | { outcome: 'precondition-failed' }
  /** Serve; `range` is the Range header still in force after If-Range. */
  | { outcome: 'serve'; range: string | undefined };

type Condition = 'none' | 'true' | 'false';

/** Go's checkPreconditions, for a resource with no ETag. */
export function evaluatePreconditions(method: string, headers: Readonly<Record<string, string | string[] | undefined>>, modified: Date): Precondition {
  const header = (name: string) => {
    const value = headers[name];
    return Array.isArray(value) ? value.join(', ') : (value ?? '');
  };
  const isGetOrHead = method === 'GET' || method === 'HEAD';
  const seconds = Math.floor(modified.getTime() / 1000);
  const known = modified.getTime() > 0;

  let condition = matchesAnyTag(header('if-match'));
  if (condition === 'none') condition = ifUnmodifiedSince(header('if-unmodified-since'), seconds, known);
  if (condition === 'false') return { outcome: 'precondition-failed' };

  const noneMatch = header('if-none-match');
  if (noneMatch !== '') {
    // Without an ETag only `*` matches, and a match means "not modified" for reads.
    if (matchesAnyTag(noneMatch) === 'true') return isGetOrHead ? { outcome: 'not-modified' } : { outcome: 'precondition-failed' };
  } else if (isGetOrHead && ifModifiedSince(header('if-modified-since'), seconds, known) === 'false') {
    return { outcome: 'not-modified' };
  }

  let range: string | undefined = header('range') || undefined;
  if (range !== undefined && isGetOrHead && !ifRangeHolds(header('if-range'), seconds, known)) range = undefined;
  return { outcome: 'serve', range };
}

/** For directory listings Go checks If-Modified-Since alone. */
export function notModifiedSince(method: string, ifModifiedSinceHeader: string | undefined, modified: Date): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return ifModifiedSince(ifModifiedSinceHeader ?? '', Math.floor(modified.getTime() / 1000), modified.getTime() > 0) === 'false';
}

function matchesAnyTag(header: string): Condition {
  if (header === '') return 'none';
  return header.split(',').some((tag) => tag.trim() === '*') ? 'true' : 'false';
}

function ifUnmodifiedSince(header: string, modifiedSeconds: number, known: boolean): Condition {
  if (header === '' || !known) return 'none';
  const since = parseHttpDate(header);
  if (!since) return 'none';
  return modifiedSeconds <= since.getTime() / 1000 ? 'true' : 'false';
}

function ifModifiedSince(header: string, modifiedSeconds: number, known: boolean): Condition {
  if (header === '' || !known) return 'none';
  const since = parseHttpDate(header);
  if (!since) return 'none';
  return modifiedSeconds <= since.getTime() / 1000 ? 'false' : 'true';
}

function ifRangeHolds(header: string, modifiedSeconds: number, known: boolean): boolean {
  if (header === '') return true;
  // An entity tag never matches: the server sets none.
  if (header.startsWith('"') || header.startsWith('W/"')) return false;
  if (!known) return false;
  const date = parseHttpDate(header);
  return date !== undefined && date.getTime() / 1000 === modifiedSeconds;
}
