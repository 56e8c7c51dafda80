// `ccbridge ssh <name> [--index N]`: the system `ssh` into one instance, at the SSH port the API
// reports for it. The development Cloud Controller reports each instance's host and app port but
// no SSH port today, so this says so plainly rather than guess a port.
import { spawn } from 'node:child_process';
import { int } from '../lib/flags.js';
import type { CliCommandSpec } from './command.js';
import { CliError } from './errors.js';

const sshFlags = {
  index: int('the instance index', 0, { check: (v) => (v >= 0 ? undefined : 'must be 0 or more') }),
};

export const ssh: CliCommandSpec<typeof sshFlags> = {
  usage: 'ssh <name> [--index N]',
  summary: 'open a shell in an app instance with the system ssh (needs an SSH port from the API)',
  flags: sshFlags,
  args: { min: 1, max: 1 },
  async run(context) {
    const name = context.args[0]!;
    const index = context.flags.index;
    const app = await context.api.app(name);
    if (!app.allow_ssh) throw new CliError(`ssh is not allowed for ${app.name} (push a new app with --allow-ssh)`);
    const instance = (app.instance_details ?? []).find((i) => i.index === index);
    if (!instance) throw new CliError(`${app.name} has no instance ${index} (it has ${app.instances})`);
    if (instance.state !== 'RUNNING') throw new CliError(`instance ${index} of ${app.name} is ${instance.state}, not RUNNING`);
    if (!instance.host || !instance.ssh_port) {
      throw new CliError(`the API does not report an SSH port for instance ${index} of ${app.name} (only its app port), so ssh cannot reach it`);
    }
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn('ssh', ['-p', String(instance.ssh_port), `vcap@${instance.host}`], { stdio: 'inherit' });
      child.on('error', (error: NodeJS.ErrnoException) => reject(new CliError(error.code === 'ENOENT' ? 'the system ssh was not found' : `ssh did not run: ${error.message}`)));
      child.on('close', (exit, signal) => resolve(exit ?? (signal ? 128 : 1)));
    });
    return code;
  },
};
