// bin/release <build dir>: the start command as the YAML the builder reads. The command is
// written as a double-quoted YAML scalar (a JSON string is one), so any command survives.
import { readPackageJson, startCommandFor } from './package-json.mjs';

const [buildDir] = process.argv.slice(2);
if (!buildDir) {
  process.stderr.write('usage: release <build dir>\n');
  process.exit(1);
}

const command = startCommandFor(readPackageJson(buildDir));
process.stdout.write(['---', 'addons: []', 'config_vars: {}', 'default_process_types:', `  web: ${JSON.stringify(command)}`, ''].join('\n'));
