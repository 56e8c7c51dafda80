// `ccbridge cloud-controller`: the development Cloud Controller alone — a small development
// stand-in for Cloud Controller (not Cloud Controller) that stores apps and drives the bridge.
import { join } from 'node:path';
import { buildpackUrl, CC_DEFAULTS, DEFAULT_BUILDPACK_NAMES, startDevelopmentCloudController } from '../../embedded/cloud-controller/index.js';
import { defineCommand } from '../../lib/daemon.js';
import { checkListenAddress, list, splitHostPort, string } from '../../lib/flags.js';
import { commonFlags } from './common.js';
import { readFileSync } from 'node:fs';
import { bbsClientFrom, bbsFlags, ccFlags, lifecycleFlags, listenerTlsFlags, listenerTlsFrom } from './flags.js';

const checkUrl = (value: string) => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : `"${value}" is not an http(s) URL`;
  } catch {
    return `"${value}" is not a URL`;
  }
};

const readPem = (path: string) => (path ? readFileSync(path) : undefined);

/** `name` (served by the file server) or `name=url`. */
export function parseBuildpack(value: string): { name: string; url?: string } {
  const eq = value.indexOf('=');
  return eq < 0 ? { name: value } : { name: value.slice(0, eq), url: value.slice(eq + 1) };
}

const checkBuildpacks = (values: string[]) => {
  for (const value of values) {
    const { name, url } = parseBuildpack(value);
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) return `"${value}": a buildpack is name or name=url, the name made of letters, digits, _ . -`;
    if (url !== undefined && checkUrl(url)) return `"${value}": ${checkUrl(url)}`;
  }
  return undefined;
};

/** The flags the development CC adds; the all-in-one takes them too. */
export const cloudControllerFlags = {
  ccListenAddress: string('host:port the development Cloud Controller listens on', '127.0.0.1:9022', { check: checkListenAddress }),
  bridgeURL: string('URL of the bridge\'s REST gateway, which the development Cloud Controller drives', 'http://127.0.0.1:8888', { check: checkUrl }),
  appDomain: string('domain of app routes (<app>.<domain>)', CC_DEFAULTS.appDomain, {
    check: (v) => (/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(v) ? undefined : `"${v}" is not a domain`),
  }),
  buildpack: {
    ...list('buildpack offered for detection, in order (repeatable): name (from the file server) or name=url', [...DEFAULT_BUILDPACK_NAMES]),
    check: checkBuildpacks,
  },
};

export default defineCommand({
  summary: 'the development Cloud Controller (a small stand-in that stores apps and drives the bridge; not for production)',
  flags: {
    ...commonFlags,
    ccUsername: ccFlags.ccUsername,
    ccPassword: ccFlags.ccPassword,
    fileServerURL: lifecycleFlags.fileServerURL,
    ...cloudControllerFlags,
    listenerCert: listenerTlsFlags.listenerCert,
    listenerKey: listenerTlsFlags.listenerKey,
    bridgeCACert: string('CA certificate (PEM file) that signed the gateway\'s certificate (https -bridgeURL)'),
    bridgeClientCert: string('client certificate (PEM file) presented to the gateway'),
    bridgeClientKey: string('client key (PEM file) for -bridgeClientCert'),
    bridgeUsername: string('basic auth user of the gateway (its -listenerUsername)'),
    bridgePassword: string('basic auth password of the gateway (its -listenerPassword)', '', { secret: true }),
    ...bbsFlags,
    bbsAddress: string('URL of the Diego BBS, read for SSH access only: each instance\'s SSH port and what `ccbridge ssh` needs (empty: no SSH access)', '', { check: (v) => (v === '' ? undefined : checkUrl(v)) }),
  },
  async start(flags, log) {
    const { host, port } = splitHostPort(flags.ccListenAddress);
    const buildpacks = flags.buildpack.map(parseBuildpack).map((b) => ({ name: b.name, url: b.url ?? buildpackUrl(flags.fileServerURL, b.name) }));
    const bbs = flags.bbsAddress ? bbsClientFrom(flags, flags.bbsAddress, log) : undefined;
    const cc = await startDevelopmentCloudController({
      dataDir: join(flags.dataDir, 'cloud-controller'),
      host,
      port,
      logger: log,
      username: flags.ccUsername,
      password: flags.ccPassword,
      bridgeUrl: flags.bridgeURL,
      fileServerUrl: flags.fileServerURL,
      appDomain: flags.appDomain,
      buildpacks,
      tls: listenerTlsFrom({ ...flags, listenerCACert: '' }),
      bridgeAuth: {
        tls: flags.bridgeCACert || flags.bridgeClientCert ? { ca: readPem(flags.bridgeCACert), cert: readPem(flags.bridgeClientCert), key: readPem(flags.bridgeClientKey) } : undefined,
        username: flags.bridgeUsername,
        password: flags.bridgePassword,
      },
      bbs,
    }).catch((error: unknown) => {
      bbs?.close();
      throw error;
    });
    process.stdout.write(`cloud controller (development)   ${cc.url}\n`);
    return {
      async stop() {
        await cc.close();
        bbs?.close();
      },
    };
  },
});
