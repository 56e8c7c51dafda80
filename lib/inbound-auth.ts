// Inbound authentication of the REST listeners (the gateway, each service daemon's CC routes,
// the development CC): basic auth against configured credentials, or a client certificate the
// listener's CA verified. Off unless configured, as the 2015 daemons had none.
//
// A refused request gets 401 and a fixed body, nothing about why; basic auth also gets a
// WWW-Authenticate challenge. Credentials are compared in constant time (over SHA-256 digests,
// so neither the length nor the contents leak through timing).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasVerifiedClientCertificate } from './tls.js';

export interface InboundAuthConfig {
  /** Basic auth; both empty: no basic auth. */
  username?: string;
  password?: string;
  /** Client certificates verified by the listener's CA authenticate (the listener has one). */
  clientCertificates?: boolean;
  realm?: string;
}

/** How one request may authenticate. */
export type AuthPolicy = 'basic-or-certificate' | 'certificate-only';

export type AuthOutcome = 'off' | 'certificate' | 'basic' | 'refused';

export interface InboundAuth {
  /** Whether any authentication is configured. */
  readonly enabled: boolean;
  /** Decides for one request; 'off' when nothing is configured. */
  check(req: IncomingMessage, policy?: AuthPolicy): AuthOutcome;
  /** Writes the 401 (fixed body; a Basic challenge when basic auth is configured). */
  refuse(res: ServerResponse): void;
}

export const UNAUTHORIZED_BODY = 'Unauthorized\n';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Constant-time equality of two strings. */
export function secretsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(digest(given), digest(expected));
}

/** `Basic base64(user:password)` → [user, password], or undefined. */
export function parseBasicAuthorization(header: string | undefined): [string, string] | undefined {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

export function createInboundAuth(config: InboundAuthConfig): InboundAuth {
  const username = config.username ?? '';
  const password = config.password ?? '';
  const basic = username !== '' || password !== '';
  const certificates = config.clientCertificates === true;
  const enabled = basic || certificates;
  const challenge = `Basic realm="${(config.realm ?? 'ccbridge').replace(/"/g, '')}"`;
  return {
    enabled,
    check(req, policy = 'basic-or-certificate') {
      if (!enabled) return 'off';
      if (certificates && hasVerifiedClientCertificate(req.socket)) return 'certificate';
      if (policy === 'certificate-only' || !basic) return 'refused';
      const credentials = parseBasicAuthorization(req.headers.authorization);
      if (!credentials) return 'refused';
      // Both compared, always, so a wrong user costs the same as a wrong password.
      const userMatches = secretsEqual(credentials[0], username);
      const passwordMatches = secretsEqual(credentials[1], password);
      return userMatches && passwordMatches ? 'basic' : 'refused';
    },
    refuse(res) {
      const headers: Record<string, string | number> = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(UNAUTHORIZED_BODY) };
      if (basic) headers['WWW-Authenticate'] = challenge;
      res.writeHead(401, headers);
      res.end(UNAUTHORIZED_BODY);
    },
  };
}
