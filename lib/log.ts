// One logger for every component. Messages are kebab-case event names; data goes in fields.
// Secrets never reach a line: known secret-bearing paths are redacted here, and callers
// must not log run-action arguments or environments at all.
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Field paths whose values are secrets wherever they appear in a logged object. */
export const REDACTED_PATHS = [
  'password',
  '*.password',
  'docker_password',
  '*.docker_password',
  'dockerPassword',
  '*.dockerPassword',
  'image_password',
  '*.image_password',
  'imagePassword',
  '*.imagePassword',
  'private_key',
  '*.private_key',
  'privateKey',
  '*.privateKey',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'ccPassword',
  '*.ccPassword',
  'listenerPassword',
  '*.listenerPassword',
  'bridgePassword',
  '*.bridgePassword',
  'routes',
  '*.routes',
];

/**
 * Secrets recognised by their shape, wherever they sit in a line (inside an error message, a
 * URL, an argument list): private keys in PEM, passwords in the docker builder's arguments,
 * credentials in URLs. Applied to every serialized line as the last step before it is written.
 */
const SECRET_PATTERNS: [RegExp, string][] = [
  [/-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g, '[REDACTED PRIVATE KEY]'],
  [/(-{1,2}(?:dockerPassword|docker-password|password|ccPassword|listenerPassword|bridgePassword)[= ]+)[^\s",]+/gi, '$1[REDACTED]'],
  // The same arguments as separate elements of a JSON argument list: ["-dockerPassword","secret"].
  [/("-{1,2}(?:dockerPassword|docker-password|password|ccPassword|listenerPassword|bridgePassword)",\s*")(?:[^"\\]|\\.)*"/gi, '$1[REDACTED]"'],
  // Secret fields nested deeper than the field paths reach (inside err, a request, a task).
  [/("(?:password|docker_password|dockerPassword|image_password|imagePassword|private_key|privateKey|authorization|ccPassword|listenerPassword|bridgePassword)":\s*")(?:[^"\\]|\\.)*"/gi, '$1[REDACTED]"'],
  // Credentials in a header value quoted anywhere else.
  [/\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]{8,}/g, '$1 [REDACTED]'],
  [/(\/\/[^/\s:@"]+:)[^@/\s"]+@/g, '$1[REDACTED]@'],
];

export function redactSecrets(line: string): string {
  let out = line;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

export interface LogOptions {
  level?: string;
  /** Where lines go; defaults to stdout. Tests pass a stream to read the lines back. */
  destination?: NodeJS.WritableStream;
  name?: string;
}

export function createLogger(options: LogOptions = {}): Logger {
  const config: LoggerOptions = {
    level: options.level ?? process.env.CCBRIDGE_LOG_LEVEL ?? 'info',
    base: options.name ? { daemon: options.name } : {},
    redact: { paths: REDACTED_PATHS, censor: '[REDACTED]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: { streamWrite: redactSecrets },
  };
  return options.destination ? pino(config, options.destination as pino.DestinationStream) : pino(config);
}

/** A logger that drops everything, for tests and benchmarks that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
