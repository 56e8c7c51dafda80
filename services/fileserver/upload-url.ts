// The cc-uploader's query handling as Go's net/url does it (spec §9): the CC upload URI from the
// query, its `async=true`, the `timeout` parameter, and URLs with their credentials removed for
// logs and answers. Pure functions.

/** Go's url.Values: every value of every key, keys in first-seen order. */
export type QueryValues = Map<string, string[]>;

/** Go's url.ParseQuery, keeping the pairs that decode (Go drops the others). */
export function parseGoQuery(rawQuery: string): QueryValues {
  const values: QueryValues = new Map();
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = goQueryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const value = goQueryUnescape(eq < 0 ? '' : pair.slice(eq + 1));
    if (key === undefined || value === undefined) continue;
    const list = values.get(key) ?? [];
    list.push(value);
    values.set(key, list);
  }
  return values;
}

export function firstValue(values: QueryValues, key: string): string {
  return values.get(key)?.[0] ?? '';
}

/** Go's url.QueryUnescape: `+` is a space, `%XX` a byte; undefined for a bad escape. */
export function goQueryUnescape(text: string): string | undefined {
  if (/%(?![0-9a-fA-F]{2})/.test(text)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === '%') {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (char === '+') {
      bytes.push(0x20);
    } else {
      const codePoint = String.fromCodePoint(text.codePointAt(i)!);
      bytes.push(...Buffer.from(codePoint, 'utf8'));
      i += codePoint.length - 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** Go's url.QueryEscape: only `A-Z a-z 0-9 - _ . ~` stay, space becomes `+`, upper-case hex. */
export function goQueryEscape(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      if (/[A-Za-z0-9\-_.~]/.test(char)) return char;
      if (char === ' ') return '+';
      return `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

/** Go's url.Values.Encode: keys sorted, each value in its order. */
export function encodeGoQuery(values: QueryValues): string {
  return [...values.keys()]
    .sort()
    .flatMap((key) => values.get(key)!.map((value) => `${goQueryEscape(key)}=${goQueryEscape(value)}`))
    .join('&');
}

export type UploadUri =
  | { kind: 'ok'; url: URL }
  /** Absent, or a URL without a host: `missing <key> parameter`. */
  | { kind: 'missing' }
  /** What Go's url.Parse refuses, with its error text (credentials removed). */
  | { kind: 'unparseable'; message: string };

/**
 * Reads a CC upload URI as Go's url.Parse would, then requires a host as cc-uploader does. The
 * checks reproduce the refusals Go makes (control characters, missing scheme, bad escapes, bad
 * ports, unbalanced brackets); whatever WHATWG URL still refuses is reported as invalid too.
 */
export function parseUploadUri(raw: string): UploadUri {
  if (raw === '') return { kind: 'missing' };
  const fail = (reason: string): UploadUri => ({ kind: 'unparseable', message: `parse ${JSON.stringify(withoutCredentials(raw))}: ${reason}` });
  if (/[\x00-\x1f\x7f]/.test(raw)) return fail('net/url: invalid control character in URL');

  const withoutFragment = raw.split('#')[0]!;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(withoutFragment);
  if (!scheme && withoutFragment.startsWith(':')) return fail('missing protocol scheme');
  const badEscape = /%(?![0-9a-fA-F]{2}).{0,2}/.exec(raw.split('?')[0]!);
  if (badEscape) return fail(`invalid URL escape ${JSON.stringify(badEscape[0])}`);
  if (!scheme) {
    // A relative reference: Go parses it (no host) unless its first segment holds a colon.
    const firstSegment = withoutFragment.split('?')[0]!.split('/')[0]!;
    if (!withoutFragment.startsWith('/') && firstSegment.includes(':')) return fail('first path segment in URL cannot contain colon');
    return { kind: 'missing' };
  }
  const rest = withoutFragment.slice(scheme[0].length).split('?')[0]!;
  if (!rest.startsWith('//')) return { kind: 'missing' };
  const authority = rest.slice(2).split('/')[0]!;
  const hostPort = authority.slice(authority.lastIndexOf('@') + 1);
  if (hostPort === '') return { kind: 'missing' };
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return fail("missing ']' in host");
    const after = hostPort.slice(close + 1);
    if (after !== '' && !/^:\d*$/.test(after)) return fail(`invalid port ${JSON.stringify(after)} after host`);
  } else {
    const colon = hostPort.lastIndexOf(':');
    if (colon >= 0 && !/^\d*$/.test(hostPort.slice(colon + 1))) return fail(`invalid port ${JSON.stringify(hostPort.slice(colon))} after host`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return fail('invalid URL');
  }
  if (url.host === '') return { kind: 'missing' };
  return { kind: 'ok', url };
}

/** Droplet uploads are asynchronous on CC's side: `async=true` joins the URI's query (Go re-encodes it). */
export function withAsyncTrue(url: URL): URL {
  const values = parseGoQuery(url.search.slice(1));
  values.set('async', ['true']);
  const copy = new URL(url.href);
  copy.search = encodeGoQuery(values);
  return copy;
}

export type TimeoutParameter = { kind: 'default' } | { kind: 'ok'; value: number } | { kind: 'invalid'; message: string };

/**
 * The `timeout` parameter: an integer as Go's strconv.Atoi reads it. Unlike Go, zero and negative
 * values are refused too: Go would start the upload and cancel it at once.
 */
export function parseTimeoutParameter(text: string): TimeoutParameter {
  if (text === '') return { kind: 'default' };
  if (!/^[+-]?\d+$/.test(text)) return { kind: 'invalid', message: `strconv.Atoi: parsing ${JSON.stringify(text)}: invalid syntax` };
  const value = Number(text);
  if (!Number.isSafeInteger(value)) return { kind: 'invalid', message: `strconv.Atoi: parsing ${JSON.stringify(text)}: value out of range` };
  if (value <= 0) return { kind: 'invalid', message: `timeout must be a positive number of seconds, got ${JSON.stringify(text)}` };
  return { kind: 'ok', value };
}

/** A URL with any `user:password@` removed, for logs and error texts. */
export function withoutCredentials(url: string | URL): string {
  if (url instanceof URL) {
    if (url.username === '' && url.password === '') return url.href;
    const copy = new URL(url.href);
    copy.username = '';
    copy.password = '';
    return copy.href;
  }
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/?#]*@/, '$1');
}

/** The credentials of a URL as Go's URL.User gives them (decoded), for a basic-auth header. */
export function basicAuthFor(url: URL): string | undefined {
  if (url.username === '' && url.password === '') return undefined;
  const decode = (text: string) => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  return `Basic ${Buffer.from(`${decode(url.username)}:${decode(url.password)}`).toString('base64')}`;
}
