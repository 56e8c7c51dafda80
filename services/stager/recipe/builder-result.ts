// Reading a lifecycle builder's result file (the task's `result`) with Go's decoding rules, as
// the 2015 stager's json.Unmarshal into the builder's result struct did: unknown keys ignored,
// keys matched exactly or else case-insensitively, later keys overwrite earlier ones, `null`
// leaves the zero value, a value of the wrong type is an error.
import { StagingRecipeError } from './errors.js';

type ResultFieldKind = 'string' | 'stringMap';

export interface BuilderResult {
  /** String fields by JSON key; every declared key is present ('' when absent). */
  strings: Record<string, string>;
  /** Map-of-string fields by JSON key; every declared key is present ({} when absent or null). */
  maps: Record<string, Record<string, string>>;
}

export function decodeBuilderResult(result: string, fields: Readonly<Record<string, ResultFieldKind>>): BuilderResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(result);
  } catch {
    throw invalidResult('not JSON');
  }
  const decoded: BuilderResult = { strings: {}, maps: {} };
  for (const [key, kind] of Object.entries(fields)) {
    if (kind === 'string') decoded.strings[key] = '';
    else decoded.maps[key] = {};
  }
  if (parsed === null) return decoded;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidResult('expected an object');

  const keysByLowerCase = new Map(Object.keys(fields).map((key) => [key.toLowerCase(), key]));
  for (const [givenKey, value] of Object.entries(parsed)) {
    const key = Object.hasOwn(fields, givenKey) ? givenKey : keysByLowerCase.get(givenKey.toLowerCase());
    if (key === undefined) continue;
    if (fields[key] === 'string') {
      if (value === null) continue;
      if (typeof value !== 'string') throw invalidResult(`${key}: expected a string`);
      decoded.strings[key] = value;
    } else {
      decoded.maps[key] = stringMap(key, value);
    }
  }
  return decoded;
}

function stringMap(key: string, value: unknown): Record<string, string> {
  // Go sets a map to nil for `null`, which CC then reads as no start command.
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidResult(`${key}: expected an object`);
  const entries = Object.entries(value).map(([name, item]): [string, string] => {
    if (item !== null && typeof item !== 'string') throw invalidResult(`${key}.${name}: expected a string`);
    return [name, item ?? ''];
  });
  // fromEntries defines own properties, so a process type named `__proto__` stays a key.
  return Object.fromEntries(entries);
}

function invalidResult(detail: string): StagingRecipeError {
  return new StagingRecipeError('INVALID_STAGING_RESULT', `invalid staging result: ${detail}`);
}
