// `templates config`: the effective settings and where each came from (flag, env, file, default).
import { SETTINGS } from '../../config/settings.js';
import type { CliIo } from '../io.js';
import { printed } from '../io.js';
import { COMMON_HELP, COMMON_OPTIONS, parseCommand, type CommonValues } from '../options.js';
import { readSettings } from '../setup.js';

export const CONFIG_HELP = `Usage: templates config [options]

Prints every setting, its effective value and where it came from: a flag, the environment, the
config file, or the default. The config file ($XDG_CONFIG_HOME/templates/config.json, or --config
FILE, or TEMPLATES_CONFIG) is a JSON object with these keys: ${Object.keys(SETTINGS).join(', ')}.
${COMMON_HELP}`;

export async function configCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommand<CommonValues>(args, COMMON_OPTIONS, 'config');
  if (values.help) return printed(io, `${CONFIG_HELP}\n`);
  const settings = await readSettings(values, io);
  if (values.json) return printed(io, `${JSON.stringify(settings)}\n`);
  for (const [key, setting] of Object.entries(settings)) {
    const env = SETTINGS[key as keyof typeof SETTINGS].env;
    io.stdout.write(
      `${key.padEnd(22)} ${JSON.stringify(setting.value).padEnd(40)} ${setting.from}${setting.name ? ` (${setting.name})` : ''}   [${env}]\n`,
    );
  }
  return 0;
}
