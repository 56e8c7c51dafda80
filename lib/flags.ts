// Typed command-line flags, checked at start-up. Accepts the original daemons' `-name=value`
// spelling and `--name=value`, also `-name value`; booleans may stand alone. A bad flag stops
// the daemon with one clear line (FlagError); `--help` prints every flag with its default.
import { resolve as resolvePath } from 'node:path';

export class FlagError extends Error {
  override name = 'FlagError';
}

type Kind = 'string' | 'int' | 'bool' | 'duration' | 'list';

interface FlagBase<K extends Kind, T> {
  kind: K;
  description: string;
  default: T;
  /** Extra check on the parsed value; returns an error message, or undefined when fine. */
  check?: (value: T) => string | undefined;
  /** Never printed with its value (passwords). */
  secret?: boolean;
  /** Turns the value (given or default) into the one the daemon uses, before the check. */
  finalize?: (value: T) => T;
}

export type FlagSpec =
  | FlagBase<'string', string>
  | FlagBase<'int', number>
  | FlagBase<'bool', boolean>
  | FlagBase<'duration', number>
  | FlagBase<'list', string[]>;

export type FlagSpecs = Record<string, FlagSpec>;

export type FlagValues<S extends FlagSpecs> = {
  [K in keyof S]: S[K]['default'];
};

export const string = (description: string, value = '', extra: Partial<FlagBase<'string', string>> = {}): FlagBase<'string', string> => ({
  kind: 'string',
  description,
  default: value,
  ...extra,
});
export const int = (description: string, value: number, extra: Partial<FlagBase<'int', number>> = {}): FlagBase<'int', number> => ({
  kind: 'int',
  description,
  default: value,
  ...extra,
});
export const bool = (description: string, value = false): FlagBase<'bool', boolean> => ({ kind: 'bool', description, default: value });
/** A duration in milliseconds, written as Go writes them: 500ms, 30s, 5m, 1h30m (a bare number is seconds). */
export const duration = (description: string, valueMs: number, extra: Partial<FlagBase<'duration', number>> = {}): FlagBase<'duration', number> => ({
  kind: 'duration',
  description,
  default: valueMs,
  ...extra,
});
/**
 * A directory: made absolute against the working directory at start, so every component gets
 * the same absolute path (paths handed to sandboxes and mount options must be absolute).
 */
export const directory = (description: string, value = ''): FlagBase<'string', string> =>
  string(description, value, { finalize: (path) => (path === '' ? path : resolvePath(path)) });
/** A repeatable flag; each occurrence adds one value. */
export const list = (description: string, value: string[] = []): FlagBase<'list', string[]> => ({ kind: 'list', description, default: value });

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string): number {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) throw new FlagError(`invalid duration "${text}" (use e.g. 500ms, 30s, 5m)`);
  return parts.reduce((sum, p) => sum + Number(p[1]) * UNIT_MS[p[2]!]!, 0);
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Parses argv against the specs. Returns the values and the positional arguments left over. */
export function parseFlags<S extends FlagSpecs>(specs: S, argv: readonly string[]): { values: FlagValues<S>; rest: string[]; help: boolean } {
  const values: Record<string, unknown> = {};
  const seenLists = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) values[name] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  const byLowerName = new Map(Object.keys(specs).map((name) => [name.toLowerCase(), name]));
  const rest: string[] = [];
  let help = false;

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      rest.push(arg);
      continue;
    }
    const body = arg.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const given = eq < 0 ? body : body.slice(0, eq);
    if (given === 'help' || given === 'h') {
      help = true;
      continue;
    }
    const name = specs[given] ? given : byLowerName.get(given.toLowerCase());
    if (!name) throw new FlagError(`unknown flag -${given} (see --help)`);
    const spec = specs[name]!;
    let text: string;
    if (eq >= 0) text = body.slice(eq + 1);
    else if (spec.kind === 'bool') text = 'true';
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new FlagError(`flag -${name} needs a value`);
      text = next;
      i++;
    }
    const value = parseValue(name, spec, text);
    if (spec.kind === 'list') {
      if (!seenLists.has(name)) values[name] = [];
      seenLists.add(name);
      (values[name] as string[]).push(value as string);
    } else {
      values[name] = value;
    }
  }

  for (const [name, spec] of Object.entries(specs)) {
    const finalize = spec.finalize as ((v: unknown) => unknown) | undefined;
    if (finalize) values[name] = finalize(values[name]);
    const problem = (spec.check as ((v: unknown) => string | undefined) | undefined)?.(values[name]);
    if (problem) throw new FlagError(`-${name}: ${problem}`);
  }
  return { values: values as FlagValues<S>, rest, help };
}

function parseValue(name: string, spec: FlagSpec, text: string): unknown {
  switch (spec.kind) {
    case 'string':
    case 'list':
      return text;
    case 'bool':
      if (['true', '1', 't', 'TRUE', 'True'].includes(text)) return true;
      if (['false', '0', 'f', 'FALSE', 'False'].includes(text)) return false;
      throw new FlagError(`-${name}: "${text}" is not a boolean`);
    case 'int':
      if (!/^-?\d+$/.test(text)) throw new FlagError(`-${name}: "${text}" is not an integer`);
      return Number(text);
    case 'duration':
      try {
        return parseDuration(text);
      } catch (error) {
        throw new FlagError(`-${name}: ${(error as Error).message}`);
      }
  }
}

/** The flag reference: one line per flag with its default, for --help and the README. */
export function describeFlags(specs: FlagSpecs): string {
  const lines: string[] = [];
  for (const [name, spec] of Object.entries(specs)) {
    let shown: string;
    if (spec.secret) shown = '';
    else if (spec.kind === 'duration') shown = formatDuration(spec.default);
    else if (spec.kind === 'list') shown = spec.default.join(', ');
    else shown = String(spec.default);
    lines.push(`  -${name}${spec.kind === 'bool' ? '' : ` <${spec.kind}>`}\n      ${spec.description}${shown ? ` (default ${shown})` : ''}`);
  }
  return lines.join('\n');
}

/** Checks a host:port listen address. */
export function checkListenAddress(value: string): string | undefined {
  if (value === '') return undefined;
  return /^(\[[0-9a-fA-F:.]+\]|[^:[\]]*):\d{1,5}$/.test(value) ? undefined : `"${value}" is not host:port`;
}

export function splitHostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(address.slice(at + 1)) };
}
