// URL building as the 2015 Go stager did it, so the URLs handed to containers are the same
// strings: gunk's urljoiner (§1.5), url.Values.Encode (§1.3) and url.ParseRequestURI's checks.

/**
 * Joins URL parts keeping exactly one `/` between them; empty parts are skipped
 * (`http://f.com/` + `/baz` → `http://f.com/baz`, `http://f.com` + `bar` → `http://f.com/bar`).
 */
export function joinURL(base: string, ...parts: string[]): string {
  let joined = base;
  for (const part of parts) {
    if (part === '') continue;
    const slashBefore = joined.endsWith('/');
    const slashAfter = part.startsWith('/');
    if (slashBefore && slashAfter) joined += part.slice(1);
    else if (!slashBefore && !slashAfter) joined += `/${part}`;
    else joined += part;
  }
  return joined;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

// encodeURIComponent throws on a lone surrogate; Go's JSON decoder had already turned one into
// U+FFFD, so do the same.
function wellFormed(text: string): string {
  return text.replace(LONE_SURROGATE, '\uFFFD');
}

/** A path segment with everything but unreserved characters percent-encoded. */
export function escapePathSegment(segment: string): string {
  return encodeURIComponent(wellFormed(segment)).replace(/[!'()*]/g, percentEncode);
}

/** Go's url.QueryEscape: only `A-Z a-z 0-9 - _ . ~` stay, space becomes `+`, hex upper-case. */
export function goQueryEscape(value: string): string {
  return encodeURIComponent(wellFormed(value)).replace(/[!'()*]/g, percentEncode).replace(/%20/g, '+');
}

function percentEncode(character: string): string {
  return `%${character.charCodeAt(0).toString(16).toUpperCase()}`;
}

/** Go's url.Values.Encode: keys sorted by byte order, each `key=value` query-escaped. */
export function goQueryString(values: Readonly<Record<string, string>>): string {
  return Object.keys(values)
    .sort(compareBytes)
    .map((key) => `${goQueryEscape(key)}=${goQueryEscape(values[key]!)}`)
    .join('&');
}

/** Byte-order comparison (Go's sort.Strings), not locale order. */
export function compareBytes(a: string, b: string): number {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return Buffer.compare(left, right);
}

/**
 * The URL scheme as Go's url.Parse finds it, lower-cased: letters then letters, digits, `+`,
 * `-` or `.`, ended by `:`. No scheme is ''. A `:` before any scheme character is an error in
 * Go ("missing protocol scheme"), reported here as `undefined`.
 */
export function urlScheme(rawURL: string): string | undefined {
  for (let i = 0; i < rawURL.length; i++) {
    const c = rawURL[i]!;
    if (/[A-Za-z]/.test(c)) continue;
    if (/[0-9+.-]/.test(c)) {
      if (i === 0) return '';
      continue;
    }
    if (c === ':') return i === 0 ? undefined : rawURL.slice(0, i).toLowerCase();
    return '';
  }
  return '';
}

/**
 * Why Go's url.ParseRequestURI refuses a URI, or undefined when it accepts it: an absolute URI
 * (with a scheme) or an absolute path, without control characters or broken escapes.
 */
export function requestURIProblem(rawURI: string): string | undefined {
  if (rawURI === '') return 'parse : empty url';
  if (/[\x00-\x1f\x7f]/.test(rawURI)) return `parse ${rawURI}: net/url: invalid control character in URL`;
  const scheme = urlScheme(rawURI);
  if (scheme === undefined) return `parse ${rawURI}: missing protocol scheme`;
  if (scheme === '' && !rawURI.startsWith('/')) return `parse ${rawURI}: invalid URI for request`;
  const badEscape = /%(?![0-9A-Fa-f]{2})/.exec(rawURI);
  if (badEscape) return `parse ${rawURI}: invalid URL escape "${rawURI.slice(badEscape.index, badEscape.index + 3)}"`;
  return undefined;
}
