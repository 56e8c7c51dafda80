// `ccbridge env <name>`, `set-env <name> NAME value`, `unset-env <name> NAME`. A running app
// gets new instances with the change (the development CC desires a new process).
import type { CliCommandSpec, CliContext } from './command.js';

export const env: CliCommandSpec<{}> = {
  usage: 'env <name>',
  summary: 'show the environment variables set on an app',
  flags: {},
  args: { min: 1, max: 1 },
  async run(context) {
    const { term } = context;
    const answer = await context.api.environment(context.args[0]!);
    if (term.json) return term.printJson(answer);
    const names = Object.keys(answer.var).sort();
    if (names.length === 0) {
      term.info(`No environment variables set on ${context.args[0]}.`);
      return;
    }
    for (const name of names) term.result(`${name}=${answer.var[name]}`);
  },
};

async function patch(context: CliContext<{}>, variable: string, value: string | null, done: string): Promise<void> {
  const { term } = context;
  const answer = await context.api.patchEnvironment(context.args[0]!, { [variable]: value });
  for (const warning of answer.warnings) term.warn(warning);
  if (term.json) return term.printJson(answer);
  term.result(done);
}

export const setEnv: CliCommandSpec<{}> = {
  usage: 'set-env <name> NAME value',
  summary: 'set an environment variable on an app (a running app gets new instances)',
  flags: {},
  args: { min: 3, max: 3 },
  run: (context) => patch(context, context.args[1]!, context.args[2]!, `${context.args[1]} set on ${context.args[0]}`),
};

export const unsetEnv: CliCommandSpec<{}> = {
  usage: 'unset-env <name> NAME',
  summary: 'remove an environment variable from an app (a running app gets new instances)',
  flags: {},
  args: { min: 2, max: 2 },
  run: (context) => patch(context, context.args[1]!, null, `${context.args[1]} removed from ${context.args[0]}`),
};
