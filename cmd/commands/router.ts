// `ccbridge router`: the development HTTP router (gorouter and route-emitter roles) in front of
// the apps a BBS runs, routing by Host header.
import { startRouter } from '../../embedded/router/index.js';
import { checkListenAddress, duration, splitHostPort, string } from '../../lib/flags.js';
import { defineCommand } from '../../lib/daemon.js';
import { commonFlags } from './common.js';
import { bbsClientFrom, bbsFlags } from './flags.js';

const checkDomain = (value: string) => (/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(value) ? undefined : `"${value}" is not a domain name`);

export const routerFlags = {
  routerListenAddress: string('host:port the router serves HTTP on', '127.0.0.1:8081', { check: checkListenAddress }),
  appDomain: string('domain under which <app>.<domain> reaches an app routed elsewhere', 'localhost', { check: checkDomain }),
  routerResyncInterval: duration('how often the router re-lists the BBS', 30_000, { check: (v) => (v >= 100 ? undefined : 'must be at least 100ms') }),
  routerConnectTimeout: duration('deadline of the connection to an app instance', 5_000, { check: (v) => (v > 0 ? undefined : 'must be positive') }),
};

export default defineCommand({
  summary: 'the development HTTP router: routes requests by Host to the app instances a BBS runs',
  flags: { ...commonFlags, ...bbsFlags, ...routerFlags },
  async start(flags, log) {
    if (!flags.bbsAddress) throw new Error('-bbsAddress is required');
    if (!flags.routerListenAddress) throw new Error('-routerListenAddress is required');
    const bbs = bbsClientFrom(flags, flags.bbsAddress, log);
    const { host, port } = splitHostPort(flags.routerListenAddress);
    let router;
    try {
      router = await startRouter({
        bbs,
        logger: log,
        host,
        port,
        defaultDomain: flags.appDomain,
        resyncIntervalMs: flags.routerResyncInterval,
        connectTimeoutMs: flags.routerConnectTimeout,
      });
    } catch (error) {
      bbs.close();
      throw error;
    }
    process.stdout.write(`router   ${router.url}   (http://<app>.${flags.appDomain}:${router.port}/)\n`);
    return {
      async stop() {
        await router.close();
        bbs.close();
      },
    };
  },
});
