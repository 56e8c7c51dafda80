// JSON as Go's encoding/json writes it, for the files other programs read back (result.json,
// staging_info.yml, execution_metadata, VCAP_APPLICATION): `<`, `>`, `&`, U+2028 and U+2029
// escaped as \u003c… (Go's HTML-safe default), and maps (not structs) with their keys sorted.
// Readers parse JSON either way; matching Go keeps the bytes CC stores the same as before.

const GO_ESCAPES = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** JSON.stringify with Go's escaping; key order is the caller's (struct field order). */
export function goJson(value) {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (char) => GO_ESCAPES[/** @type {keyof typeof GO_ESCAPES} */ (char)]);
}

/** A copy of a map-like value with its keys sorted, recursively, as Go encodes map[string]…. */
export function sortedMap(value) {
  if (Array.isArray(value)) return value.map(sortedMap);
  if (typeof value !== 'object' || value === null) return value;
  /** @type {Record<string, unknown>} */
  const sorted = {};
  for (const key of Object.keys(value).sort(compareBytes)) {
    // defineProperty keeps a key named `__proto__` an ordinary key.
    Object.defineProperty(sorted, key, { value: sortedMap(value[key]), enumerable: true, writable: true, configurable: true });
  }
  return sorted;
}

/** Go sorts map keys by their UTF-8 bytes. */
function compareBytes(a, b) {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
