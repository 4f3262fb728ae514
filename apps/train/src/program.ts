import { recordRankFailure } from '@mptjs/trainer';
import { Command, CommanderError } from 'commander';
import { addDataCommands } from './commands/data.js';
import { addExportCommand } from './commands/export.js';
import { addRunCommand } from './commands/run.js';
import { addTokenizerCommands } from './commands/tokenizer.js';

/** The `mptjs-train` command tree. Each subcommand lives in its own module under `commands/`. */
export function buildProgram(): Command {
  const program = new Command('mptjs-train')
    .description('Train MPT models from llm-foundry-style YAML configs; prepare and inspect training data.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  addRunCommand(program);
  addExportCommand(program);
  addDataCommands(program);
  addTokenizerCommands(program);
  return program;
}

/** Runs the CLI and returns the exit code: 0 on success, 2 for usage errors, 1 for failures. */
export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    process.stderr.write(`mptjs-train: ${err instanceof Error ? err.message : String(err)}\n`);
    recordRankFailure(err);
    if (process.env['MPTJS_DEBUG']) console.error(err);
    return 1;
  }
}
