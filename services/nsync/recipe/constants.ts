// Values the 2015 nsync recipes share (ccbridge-2015 §2.4, §4.3, §4.4) and that the lifecycle
// binaries rely on (§10): changing one changes what a container finds at run time.

/** The BBS domain of every app LRP; the bulker keeps it fresh. */
export const APP_LRP_DOMAIN = 'cf-apps';

/** The port a buildpack app listens on, and a docker app's when its image exposes none. */
export const DEFAULT_APP_PORT = 8080;
/** The container port of diego-sshd. */
export const SSH_PORT = 2222;

/** nofile for an app whose CC record says 0, and always for the health check. */
export const DEFAULT_FILE_DESCRIPTOR_LIMIT = 1024;

export const LRP_LOG_SOURCE = 'CELL';
export const APP_LOG_SOURCE = 'APP';
export const HEALTH_LOG_SOURCE = 'HEALTH';

/** The 2015 monitor timeout: a health check run that hangs longer counts as failed. */
export const MONITOR_TIMEOUT_MS = 30_000;

/** Where the setup action unpacks the lifecycle bundle; the paths below live in it. */
export const LIFECYCLE_DIR = '/tmp/lifecycle';
export const LAUNCHER_PATH = `${LIFECYCLE_DIR}/launcher`;
export const HEALTHCHECK_PATH = `${LIFECYCLE_DIR}/healthcheck`;
export const SSHD_PATH = `${LIFECYCLE_DIR}/diego-sshd`;

/** The unprivileged user of the buildpack rootfs. */
export const BUILDPACK_USER = 'vcap';
/** A docker image's user when its metadata names none, as Docker itself defaults. */
export const DEFAULT_DOCKER_USER = 'root';

/** Routing keys in DesiredLRP.routes. */
export const CF_ROUTER_KEY = 'cf-router';
export const DIEGO_SSH_KEY = 'diego-ssh';
