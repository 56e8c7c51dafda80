// Command-line flags read the way Go's `flag` package reads them, because the recipes that start
// these programs were written for Go binaries: `-name=value`, `--name=value`, `-name value` for
// non-boolean flags, a bare `-name` for booleans, parsing stops at the first non-flag argument or
// at `--`. Errors carry Go's wording so a misconfigured recipe reads the same in the logs.

export class FlagError extends Error {}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/**
 * @typedef {{ type: 'string' | 'bool' | 'duration', default: string | boolean | number, usage: string }} FlagDefinition
 * @param {readonly string[]} args
 * @param {Readonly<Record<string, FlagDefinition>>} definitions
 * @returns {{ values: Record<string, string | boolean | number>, rest: string[] }}
 */
export function parseGoFlags(args, definitions) {
  /** @type {Record<string, string | boolean | number>} */
  const values = Object.create(null);
  for (const [name, definition] of Object.entries(definitions)) values[name] = definition.default;

  let index = 0;
  while (index < args.length) {
    const arg = args[index];
    if (arg.length < 2 || arg[0] !== '-') break;
    let body = arg.slice(1);
    if (body[0] === '-') {
      body = body.slice(1);
      // A bare `--` ends the flags and is itself consumed.
      if (body === '') {
        index += 1;
        break;
      }
    }
    if (body === '' || body[0] === '-' || body[0] === '=') throw new FlagError(`bad flag syntax: ${arg}`);
    index += 1;

    const equals = body.indexOf('=');
    const name = equals < 0 ? body : body.slice(0, equals);
    const definition = Object.hasOwn(definitions, name) ? definitions[name] : undefined;
    if (definition === undefined) throw new FlagError(`flag provided but not defined: -${name}`);

    let text;
    if (equals >= 0) {
      text = body.slice(equals + 1);
    } else if (definition.type === 'bool') {
      text = 'true';
    } else {
      if (index >= args.length) throw new FlagError(`flag needs an argument: -${name}`);
      text = args[index];
      index += 1;
    }
    values[name] = convert(name, definition, text);
  }
  return { values, rest: args.slice(index) };
}

function convert(name, definition, text) {
  switch (definition.type) {
    case 'string':
      return text;
    case 'bool':
      if (TRUE_WORDS.has(text)) return true;
      if (FALSE_WORDS.has(text)) return false;
      throw new FlagError(`invalid boolean value ${JSON.stringify(text)} for -${name}: parse error`);
    case 'duration': {
      const ms = parseGoDurationMs(text);
      if (ms === undefined) throw new FlagError(`invalid value ${JSON.stringify(text)} for flag -${name}: parse error`);
      return ms;
    }
    default:
      throw new TypeError(`unknown flag type ${definition.type}`);
  }
}

const DURATION_UNITS_MS = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go's time.ParseDuration (`100ms`, `1.5s`, `1m30s`, `0`) in milliseconds; undefined when invalid. */
export function parseGoDurationMs(text) {
  if (text === '0' || text === '+0' || text === '-0') return 0;
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(text);
  if (!match) return undefined;
  let total = 0;
  for (const part of text.replace(/^[+-]/, '').matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) {
    total += Number(part[1]) * DURATION_UNITS_MS[/** @type {keyof typeof DURATION_UNITS_MS} */ (part[2])];
  }
  return match[1] === '-' ? -total : total;
}

/** Go's `flag.PrintDefaults`, near enough for a usage message. */
export function flagUsage(program, definitions) {
  const lines = [`Usage of ${program}:`];
  for (const name of Object.keys(definitions).sort()) {
    const { type, default: fallback, usage } = definitions[name];
    const typeName = type === 'bool' ? '' : ` ${type === 'duration' ? 'duration' : 'string'}`;
    let line = `  -${name}${typeName}\n    \t${usage}`;
    if (type === 'string' && fallback !== '') line += ` (default ${JSON.stringify(fallback)})`;
    if (type === 'bool' && fallback === true) line += ' (default true)';
    if (type === 'duration') line += ` (default ${Number(fallback) % 1000 === 0 ? `${Number(fallback) / 1000}s` : `${fallback}ms`})`;
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}
