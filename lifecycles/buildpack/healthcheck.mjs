// The health check a cell's monitor runs in an app's container (spec §4.3, §10):
//   healthcheck -port=8080              healthy when the port accepts a TCP connection
//   healthcheck -port=8080 -uri=/path   healthy when GET /path answers 2xx or 3xx (not followed)
// within -timeout (default 1s, Go duration syntax). It prints "healthcheck passed" and exits 0,
// or prints "healthcheck failed" (the reason on stderr) and exits 1; the monitor polls it again.
//
// It checks the app on the loopback address: the container's network namespace is the app's, and
// an app listening on 0.0.0.0 (as Cloud Foundry apps do) answers there.
import http from 'node:http';
import net from 'node:net';
import { FlagError, flagUsage, parseGoFlags } from './lib/flags.mjs';

const FLAGS = {
  network: { type: 'string', default: 'tcp', usage: 'network type to dial with (tcp, tcp4 or tcp6)' },
  port: { type: 'string', default: '8080', usage: 'port to health check' },
  uri: { type: 'string', default: '', usage: 'uri to health check over HTTP; a TCP check when empty' },
  timeout: { type: 'duration', default: 1000, usage: 'how long a check may take' },
};

const HOSTS = { tcp: '127.0.0.1', tcp4: '127.0.0.1', tcp6: '::1' };

/** @returns {Promise<string | undefined>} the failure, or undefined when healthy */
function checkPort(host, port, timeoutMs) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`failed to connect to ${host}:${port} within ${timeoutMs}ms`);
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      resolve(`failed to connect to ${host}:${port}: ${error.message}`);
    });
  });
}

/** @returns {Promise<string | undefined>} */
function checkHttp(host, port, uri, timeoutMs) {
  return new Promise((resolve) => {
    const path = uri.startsWith('/') ? uri : `/${uri}`;
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;
    const request = http.get({ host, port, path, agent: false, headers: { 'user-agent': 'diego-healthcheck' } });
    const timer = setTimeout(() => {
      request.destroy();
      resolve(`no answer from ${url} within ${timeoutMs}ms`);
    }, timeoutMs);
    request.once('response', (response) => {
      clearTimeout(timer);
      response.resume();
      request.destroy();
      const status = response.statusCode ?? 0;
      resolve(status >= 200 && status < 400 ? undefined : `${url} answered with status ${status}`);
    });
    request.once('error', (error) => {
      clearTimeout(timer);
      resolve(`failed to get ${url}: ${error.message}`);
    });
  });
}

async function main(argv) {
  let values;
  try {
    ({ values } = parseGoFlags(argv, FLAGS));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`${error.message}\n${flagUsage('healthcheck', FLAGS)}`);
    return 2;
  }
  const network = String(values.network);
  const host = Object.hasOwn(HOSTS, network) ? HOSTS[/** @type {keyof typeof HOSTS} */ (network)] : undefined;
  const port = Number(values.port);
  const timeoutMs = Number(values.timeout);
  let failure;
  if (host === undefined) failure = `unsupported network ${JSON.stringify(network)}`;
  else if (!/^\d+$/.test(String(values.port)) || port < 1 || port > 65535) failure = `invalid port ${JSON.stringify(values.port)}`;
  else failure = values.uri === '' ? await checkPort(host, port, timeoutMs) : await checkHttp(host, port, String(values.uri), timeoutMs);

  if (failure === undefined) {
    process.stdout.write('healthcheck passed\n');
    return 0;
  }
  process.stderr.write(`${failure}\n`);
  process.stdout.write('healthcheck failed\n');
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
