// Buildpack apps (ccbridge-2015 §4.3): the stack's preloaded rootfs, the buildpack lifecycle and
// the staged droplet downloaded into the container, the app on port 8080 as vcap.
import { download, serial } from './actions.js';
import { lifecycleDownloadUrl, lifecyclePathFor } from './config.js';
import { BUILDPACK_USER, DEFAULT_APP_PORT, LIFECYCLE_DIR } from './constants.js';
import { assembleDesiredLrp, type RecipeBuilder } from './desired-lrp.js';
import { appSourceMissing, multipleAppSources, noLifecycleDefined } from './errors.js';

/** The container environment the buildpack rootfs expects. */
const BUILDPACK_CONTAINER_ENV = [{ name: 'LANG', value: 'en_US.UTF-8' }] as const;

export const buildpackRecipeBuilder: RecipeBuilder = {
  build(app, config) {
    if (app.dropletUri === '') throw appSourceMissing();
    if (app.dockerImage !== '') throw multipleAppSources();
    const lifecyclePath = lifecyclePathFor(config, `buildpack/${app.stack}`);
    if (lifecyclePath === undefined) throw noLifecycleDefined();

    return assembleDesiredLrp(app, config, {
      rootFs: `preloaded:${app.stack}`,
      privileged: config.privilegedContainers,
      environmentVariables: BUILDPACK_CONTAINER_ENV,
      // Both downloads are cached by the cell: the lifecycle per stack, the droplet per process
      // guid (a new droplet comes with a new guid, so the key never serves a stale droplet).
      setup: serial(
        download({
          from: lifecycleDownloadUrl(lifecyclePath, config.fileServerUrl),
          to: LIFECYCLE_DIR,
          cacheKey: `buildpack-${app.stack}-lifecycle`,
          user: BUILDPACK_USER,
        }),
        download({
          from: app.dropletUri,
          to: '.',
          cacheKey: `droplets-${app.processGuid}`,
          user: BUILDPACK_USER,
        }),
      ),
      user: BUILDPACK_USER,
      port: DEFAULT_APP_PORT,
    });
  },

  exposedPort: () => DEFAULT_APP_PORT,
};
