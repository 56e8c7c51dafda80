// Every subcommand of `ccbridge`, by name, and the all-in-one daemon.
import type { Command } from '../../lib/daemon.js';
import allInOne from './all-in-one.js';
import cloudController from './cloud-controller.js';
import fileServer from './file-server.js';
import gateway from './gateway.js';
import locket from './locket.js';
import nsyncBulker from './nsync-bulker.js';
import nsyncListener from './nsync-listener.js';
import router from './router.js';
import stager from './stager.js';
import tpsListener from './tps-listener.js';
import tpsWatcher from './tps-watcher.js';
import uploader from './uploader.js';

export const ALL_IN_ONE = allInOne as unknown as Command;

export const COMMANDS: Record<string, Command> = {
  gateway: gateway as unknown as Command,
  stager: stager as unknown as Command,
  'nsync-listener': nsyncListener as unknown as Command,
  'nsync-bulker': nsyncBulker as unknown as Command,
  'tps-listener': tpsListener as unknown as Command,
  'tps-watcher': tpsWatcher as unknown as Command,
  'file-server': fileServer as unknown as Command,
  uploader: uploader as unknown as Command,
  'cloud-controller': cloudController as unknown as Command,
  router: router as unknown as Command,
  locket: locket as unknown as Command,
};
