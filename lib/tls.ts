// TLS for the servers every daemon runs: one set of PEM files (certificate, key, and the CA that
// signs the clients' certificates) turned into the options of node:https, of grpc-js and of the
// clients that call those servers. The key's contents stay in memory and are never logged;
// errors name the file, never what is in it.
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import { ChannelCredentials } from 'nice-grpc';

/** PEM file paths as the flags give them; empty strings mean "not given". */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  /** CA that signs the clients' certificates (servers) or the server's (clients). */
  caFile: string;
}

/** PEM contents, loaded once at start. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  /** With a CA a server asks for client certificates (mutual TLS). */
  ca?: Buffer;
}

export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

function readPemFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TlsConfigError(`cannot read the ${what} ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

/**
 * The server's TLS material, or undefined when no certificate is configured (plaintext). A
 * certificate without its key (or the reverse), or a client CA without a certificate, is a
 * configuration error.
 */
export function loadServerTls(files: TlsFiles, flagPrefix = 'listener'): TlsMaterial | undefined {
  const { certFile, keyFile, caFile } = files;
  if (!certFile && !keyFile) {
    if (caFile) throw new TlsConfigError(`-${flagPrefix}CACert needs -${flagPrefix}Cert and -${flagPrefix}Key`);
    return undefined;
  }
  if (!certFile || !keyFile) throw new TlsConfigError(`-${flagPrefix}Cert and -${flagPrefix}Key go together`);
  return {
    cert: readPemFile(certFile, 'certificate'),
    key: readPemFile(keyFile, 'key'),
    ca: caFile ? readPemFile(caFile, 'CA certificate') : undefined,
  };
}

/** Options of node:https createServer. */
export interface HttpsServerTlsOptions {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  minVersion: 'TLSv1.2';
}

/**
 * For HTTPS servers. `requireClientCert`: the handshake itself refuses a client without a
 * certificate signed by the CA (the BBS, Locket); otherwise a certificate is asked for and
 * checked per request (listeners that also take basic auth).
 */
export function httpsServerOptions(tls: TlsMaterial, requireClientCert: boolean): HttpsServerTlsOptions {
  const mutual = tls.ca !== undefined;
  return { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: mutual, rejectUnauthorized: mutual && requireClientCert, minVersion: 'TLSv1.2' };
}

/** For gRPC servers: with a CA, client certificates are required and verified (mutual TLS). */
export function grpcServerCredentials(tls: TlsMaterial | undefined): ServerCredentials | undefined {
  if (!tls) return undefined;
  return ServerCredentials.createSsl(tls.ca ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.ca !== undefined);
}

/** For gRPC clients: the CA that signed the server, and the client's own certificate when given. */
export function grpcChannelCredentials(files: TlsFiles): ChannelCredentials {
  const ca = files.caFile ? readPemFile(files.caFile, 'CA certificate') : null;
  const key = files.keyFile ? readPemFile(files.keyFile, 'key') : null;
  const cert = files.certFile ? readPemFile(files.certFile, 'certificate') : null;
  return ChannelCredentials.createSsl(ca, key, cert);
}

/** Whether the request came over TLS with a client certificate the server's CA verified. */
export function hasVerifiedClientCertificate(socket: unknown): boolean {
  const tls = socket as Partial<TLSSocket> | undefined;
  return tls?.encrypted === true && tls.authorized === true && typeof tls.getPeerCertificate === 'function' && Object.keys(tls.getPeerCertificate()).length > 0;
}
