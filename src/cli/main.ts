/**
 * The `databridge` command line: builds the commander program from one file
 * per command and maps every outcome to an exit code.
 */

import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.ts';
import { EXIT_OK, EXIT_USAGE, reportFailure } from './common.ts';
import { registerKeygen } from './keygen.ts';
import { registerPluginAuthoring } from './plugin-author.ts';
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
    .exitOverride();

  const plugin = program.command('plugin').description('manage and author plugins');
  registerPluginList(plugin);
  registerPluginValidate(plugin);
  registerPluginAuthoring(plugin);
  registerPluginProject(plugin);
  registerPluginManagement(plugin);
  registerRun(program);
  registerServe(program);
  registerKeygen(program);
  registerTrust(program);
  registerToken(program);
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
  }
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
