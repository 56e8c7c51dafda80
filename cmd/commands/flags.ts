// Flag groups shared by the daemons, with the original daemons' names where they exist, and
// the clients built from them. A daemon takes the groups it needs.
import { readFileSync } from 'node:fs';
import { createBbsClient, type BbsClient } from '../../clients/bbs/index.js';
import { createCcClient, type CcClient } from '../../clients/cc/client.js';
import { bool, checkListenAddress, duration, list, string } from '../../lib/flags.js';
import { createInboundAuth, type InboundAuth } from '../../lib/inbound-auth.js';
import type { Logger } from '../../lib/log.js';
import { loadServerTls, type TlsMaterial } from '../../lib/tls.js';

const checkUrl = (value: string) => {
  if (value === '') return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : `"${value}" is not an http(s) URL`;
  } catch {
    return `"${value}" is not a URL`;
  }
};

export const bbsFlags = {
  bbsAddress: string('URL of the Diego BBS (empty: the embedded Diego, where there is one)', '', { check: checkUrl }),
  bbsCACert: string('CA certificate (PEM file) that signed the BBS certificate'),
  bbsClientCert: string('client certificate (PEM file) presented to the BBS'),
  bbsClientKey: string('client key (PEM file) for the BBS certificate'),
  bbsSkipCertVerify: bool('skip verifying the BBS certificate'),
  bbsCommunicationTimeout: duration('deadline of each BBS call', 10_000),
};

export const ccFlags = {
  ccBaseURL: string('URL of Cloud Controller\'s internal API (empty: the embedded development CC, where there is one)', '', { check: checkUrl }),
  ccUsername: string('basic auth user for Cloud Controller\'s internal API'),
  ccPassword: string('basic auth password for Cloud Controller\'s internal API', '', { secret: true }),
  ccCACert: string('CA certificate (PEM file) that signed Cloud Controller\'s certificate'),
  ccClientCert: string('client certificate (PEM file) presented to Cloud Controller'),
  ccClientKey: string('client key (PEM file) for Cloud Controller'),
  skipCertVerify: bool('skip verifying Cloud Controller\'s certificate'),
  communicationTimeout: duration('deadline of each Cloud Controller call', 30_000),
};

export const lockFlags = {
  locketAddress: string('host:port of Locket (empty: the embedded Locket, where there is one)', '', { check: checkListenAddress }),
  locketCACert: string('CA certificate (PEM file) of Locket'),
  locketClientCert: string('client certificate (PEM file) presented to Locket'),
  locketClientKey: string('client key (PEM file) for Locket'),
  lockTTL: duration('lock TTL (whole seconds on the wire)', 15_000, { check: (v) => (v >= 1_000 ? undefined : 'must be at least 1s') }),
  lockRetryInterval: duration('how often a standby tries to take the lock', 5_000),
};

export const lifecycleFlags = {
  lifecycle: list('lifecycle bundle, name[/stack]:path (repeatable); a relative path is served by the file server', [
    'buildpack/cflinuxfs4:buildpack_app_lifecycle/buildpack_app_lifecycle.tgz',
    'docker:docker_app_lifecycle/docker_app_lifecycle.tgz',
  ]),
  fileServerURL: string('URL of the file server that serves the lifecycle bundles', 'http://127.0.0.1:8080', { check: checkUrl }),
};

export const grpcListenFlag = (defaultAddress: string) => ({
  grpcListenAddress: string('host:port the gRPC service listens on', defaultAddress, { check: checkListenAddress }),
});

export const restListenFlag = (defaultAddress: string) => ({
  listenAddress: string('host:port the CC-facing REST routes listen on', defaultAddress, { check: checkListenAddress }),
});

/**
 * TLS and inbound authentication of a daemon's own listeners (REST and gRPC; in the all-in-one
 * also the embedded Diego, Locket and development CC). All off unless given.
 */
export const listenerSecurityFlags = {
  listenerCert: string('certificate (PEM file) the listeners serve TLS with (empty: plaintext)'),
  listenerKey: string('key (PEM file) of -listenerCert'),
  listenerCACert: string('CA certificate (PEM file) of client certificates: gRPC (and the embedded BBS and Locket) then require one, the REST routes accept one'),
  listenerUsername: string('basic auth user the REST routes require (with -listenerPassword)'),
  listenerPassword: string('basic auth password the REST routes require', '', { secret: true }),
};

/** The TLS part alone, for daemons whose listeners take no basic auth (file server, uploader, Locket, development CC). */
export const listenerTlsFlags = {
  listenerCert: listenerSecurityFlags.listenerCert,
  listenerKey: listenerSecurityFlags.listenerKey,
  listenerCACert: string('CA certificate (PEM file) of client certificates, which are then required (mutual TLS)'),
};

export const listenerTlsFrom = (flags: { listenerCert: string; listenerKey: string; listenerCACert: string }) =>
  loadServerTls({ certFile: flags.listenerCert, keyFile: flags.listenerKey, caFile: flags.listenerCACert });

export interface ListenerSecurity {
  tls: TlsMaterial | undefined;
  auth: InboundAuth;
}

export function listenerSecurityFrom(flags: { listenerCert: string; listenerKey: string; listenerCACert: string; listenerUsername: string; listenerPassword: string }): ListenerSecurity {
  if ((flags.listenerUsername === '') !== (flags.listenerPassword === '')) throw new Error('-listenerUsername and -listenerPassword go together');
  const tls = loadServerTls({ certFile: flags.listenerCert, keyFile: flags.listenerKey, caFile: flags.listenerCACert });
  const auth = createInboundAuth({ username: flags.listenerUsername, password: flags.listenerPassword, clientCertificates: tls?.ca !== undefined });
  return { tls, auth };
}

export const metricsFlags = {
  metricsListenAddress: string('host:port serving Prometheus /metrics (empty: off)', '', { check: checkListenAddress }),
};

const readPem = (path: string) => (path ? readFileSync(path) : undefined);

export function bbsClientFrom(flags: { bbsAddress: string; bbsCACert: string; bbsClientCert: string; bbsClientKey: string; bbsSkipCertVerify: boolean; bbsCommunicationTimeout: number }, url: string, log: Logger): BbsClient {
  const secure = url.startsWith('https:');
  return createBbsClient({
    url,
    logger: log,
    timeoutMs: flags.bbsCommunicationTimeout,
    tls: secure
      ? { ca: readPem(flags.bbsCACert), cert: readPem(flags.bbsClientCert), key: readPem(flags.bbsClientKey), skipVerify: flags.bbsSkipCertVerify }
      : undefined,
  });
}

export function ccClientFrom(
  flags: { ccUsername: string; ccPassword: string; ccCACert: string; ccClientCert: string; ccClientKey: string; skipCertVerify: boolean },
  baseUrl: string,
  timeoutMs: number,
): CcClient {
  return createCcClient({
    baseUrl,
    username: flags.ccUsername,
    password: flags.ccPassword,
    timeoutMs,
    tls: { ca: readPem(flags.ccCACert), cert: readPem(flags.ccClientCert), key: readPem(flags.ccClientKey), skipVerify: flags.skipCertVerify },
  });
}
