// `ccbridge apps` (every app, one line each) and `ccbridge app <name>` (one app and its instances).
import type { AppJson, InstanceJson } from './api.js';
import type { CliCommandSpec, CliContext } from './command.js';
import { formatBytes, formatMb, formatTime, table } from './terminal.js';

const urlOf = (context: CliContext<{}>, app: AppJson) => (app.routes[0] ? context.appUrl(app.routes[0]) : '-');

export const apps: CliCommandSpec<{}> = {
  usage: 'apps',
  summary: 'list the apps: state, instances running/desired, memory, URL',
  flags: {},
  args: { min: 0, max: 0 },
  async run(context) {
    const { term } = context;
    const answer = await context.api.apps();
    if (term.json) return term.printJson(answer);
    for (const warning of answer.warnings) term.warn(warning);
    if (answer.resources.length === 0) {
      term.info('No apps (ccbridge push <dir> creates one).');
      return;
    }
    const rows = answer.resources.map((app) => [
      app.name,
      app.state,
      // The bridge could not say how many run.
      `${app.running_instances ?? '?'}/${app.instances}`,
      formatMb(app.memory_mb),
      urlOf(context, app),
    ]);
    for (const line of table(['name', 'state', 'instances', 'memory', 'url'], rows)) term.result(line);
  },
};

function lifecycleLine(app: AppJson): string {
  if (app.lifecycle.type === 'docker') return `docker (${app.lifecycle.docker_image ?? '?'})`;
  return `buildpack (${app.lifecycle.buildpack ?? 'detected'})`;
}

function instanceRow(instance: InstanceJson, app: AppJson): string[] {
  const cpu = instance.cpu === null ? '-' : `${(instance.cpu * 100).toFixed(1)}%`;
  const memory = instance.memory_bytes === null ? '-' : `${formatBytes(instance.memory_bytes)} of ${formatMb(app.memory_mb)}`;
  const disk = instance.disk_bytes === null ? '-' : `${formatBytes(instance.disk_bytes)} of ${formatMb(app.disk_mb)}`;
  const state = instance.details ? `${instance.state} (${instance.details})` : instance.state;
  return [`#${instance.index}`, state, formatTime(instance.since), cpu, memory, disk];
}

export const app: CliCommandSpec<{}> = {
  usage: 'app <name>',
  summary: 'show one app and its instances: index, state, since, cpu, memory, disk',
  flags: {},
  args: { min: 1, max: 1 },
  async run(context) {
    const { term } = context;
    const shown = await context.api.app(context.args[0]!);
    if (term.json) return term.printJson(shown);
    for (const warning of shown.warnings ?? []) term.warn(warning);
    const instances = shown.instance_details ?? [];
    const fields: [string, string][] = [
      ['name', shown.name],
      ['state', shown.state],
      ['instances', `${shown.running_instances ?? '?'}/${shown.instances}`],
      ['memory', formatMb(shown.memory_mb)],
      ['disk', formatMb(shown.disk_mb)],
      ['url', urlOf(context, shown)],
      ['lifecycle', lifecycleLine(shown)],
      ['health check', shown.health_check.type + (shown.health_check.http_endpoint ? ` ${shown.health_check.http_endpoint}` : '')],
    ];
    if (shown.droplet) {
      const buildpack = shown.droplet.detected_buildpack ? `${shown.droplet.detected_buildpack}, ` : '';
      fields.push(['droplet', `${buildpack}start command: ${shown.droplet.start_command || '-'}`]);
    }
    if (shown.build) {
      const error = shown.build.error ? `: ${shown.build.error.id}: ${shown.build.error.message}` : '';
      fields.push(['last build', `${shown.build.state} ${formatTime(shown.build.updated_at)}${error}`]);
    }
    const width = Math.max(...fields.map(([label]) => label.length)) + 2;
    for (const [label, value] of fields) term.result(`${`${label}:`.padEnd(width)}${value}`);
    if (instances.length === 0) return;
    term.result('');
    for (const line of table(['index', 'state', 'since', 'cpu', 'memory', 'disk'], instances.map((i) => instanceRow(i, shown)))) term.result(line);
  },
};
