/**
 * The `databridge` command line: builds the commander program from one file
 * per command and maps every outcome to an exit code.
 */

import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { EXIT_OK, EXIT_USAGE, reportFailure } from './common.ts';
import { applyConfigFile, loadConfigFile } from './config-file.ts';
import { registerKeygen } from './keygen.ts';
import { flushCommandLogs, setLogSettings } from './logs.ts';
import { registerNamespace } from './namespace.ts';
import { registerPluginAuthoring } from './plugin-author.ts';
import { registerPluginCatalog } from './plugin-catalog.ts';
import { registerPluginList } from './plugin-list.ts';
import { registerPluginManagement } from './plugin-manage.ts';
import { registerPluginProject } from './plugin-project.ts';
import { registerPluginValidate } from './plugin-validate.ts';
import { registerRun } from './run.ts';
import { registerServe } from './serve.ts';
import { registerToken } from './token.ts';
import { registerTrust } from './trust.ts';

export function buildProgram(): Command {
  const program = new Command('databridge')
    .description('DataBridge: a dataflow engine and its plugin host')
    .version(VERSION, '-V, --version', 'print the version')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    // the options every command takes, shown in every command's --help
    .configureHelp({ showGlobalOptions: true })
    .option(
      '--config <file>',
      `the configuration file (default: ./databridge.json when there is one; env DATABRIDGE_CONFIG)`,
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (env DATABRIDGE_LOG_LEVEL; default info)')
    .option(
      '--log-format <format>',
      'pretty (one line for people) or json (a JSON object a line); default pretty on a terminal, json otherwise (env DATABRIDGE_LOG_FORMAT)',
    )
    .option('--verbose', 'a one-shot command prints the host’s log lines, not a summary of its warnings');
  program.hook('preAction', (_program, command) => configure(program, command));

  const plugin = program.command('plugin').description('manage and author plugins');
  registerPluginList(plugin);
  registerPluginValidate(plugin);
  registerPluginAuthoring(plugin);
  registerPluginProject(plugin);
  registerPluginManagement(plugin);
  registerPluginCatalog(plugin);
  registerRun(program);
  registerServe(program);
  registerKeygen(program);
  registerTrust(program);
  registerToken(program);
  registerNamespace(program);
  return program;
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  applyExitOverride(program);
  const unknown = unknownCommand(program, argv);
  if (unknown) {
    process.stderr.write(`error: unknown command '${unknown}'\n(add --help for usage)\n`);
    return EXIT_USAGE;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    // a command may set its own code (run: 130 after Ctrl-C)
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // asked-for help and the version exit 0; help shown for a missing
      // subcommand, and everything else commander raises, is bad usage
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    return reportFailure(err, argv.includes('--json'));
  } finally {
    flushCommandLogs();
  }
}

/**
 * Before a command's action: its log settings and the configuration file.
 * A flag beats the environment, which beats the file.
 */
function configure(program: Command, command: Command): void {
  const o = program.opts<{ config?: string; logLevel?: string; logFormat?: string; verbose?: boolean }>();
  const env = (name: string) => {
    const value = process.env[name]?.trim();
    return value ? value : undefined;
  };
  const configPath = o.config ?? env('DATABRIDGE_CONFIG');
  const fromFlagOrEnv = (flag: string, value: string | undefined, variable: string) =>
    value !== undefined
      ? { value, name: flag }
      : env(variable) !== undefined
        ? { value: env(variable)!, name: variable }
        : undefined;
  // a bad level or format is reported before the file is read
  const level = fromFlagOrEnv('--log-level', o.logLevel, 'DATABRIDGE_LOG_LEVEL');
  const format = fromFlagOrEnv('--log-format', o.logFormat, 'DATABRIDGE_LOG_FORMAT');
  setLogSettings({ level, format, verbose: o.verbose });
  const loaded = loadConfigFile(configPath);
  const file = loaded.config.log;
  setLogSettings({
    level: level ?? (file?.level ? { value: file.level, name: 'log.level' } : undefined),
    format: format ?? (file?.format ? { value: file.format, name: 'log.format' } : undefined),
    verbose: o.verbose,
  });
  applyConfigFile(loaded, command);
}

function applyExitOverride(command: Command): void {
  command.exitOverride();
  for (const sub of command.commands) applyExitOverride(sub);
}

/**
 * The first word of the command path that names no command, if any.
 * Commander would show the root help for `databridge nope --help` and exit 0;
 * an unknown command is bad usage however it is asked for.
 */
function unknownCommand(program: Command, argv: readonly string[]): string | undefined {
  let command = program;
  for (const word of argv) {
    if (word.startsWith('-') || command.commands.length === 0) return undefined;
    if (word === 'help') return undefined;
    const next = command.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (!next) return word;
    command = next;
  }
  return undefined;
}
