import { Command, CommanderError } from 'commander';
import { addGenerateCommand } from './commands/generate.js';
import { addLogitsCommand } from './commands/logits.js';
import { addServeCommand } from './commands/serve.js';
import { UsageError } from './errors.js';

/** The `mptjs-serve` command tree. Each subcommand lives in its own module under `commands/`. */
export function buildProgram(): Command {
  const program = new Command('mptjs-serve')
    .description('Run MPT checkpoints: logits, text generation, and an OpenAI-compatible HTTP server.')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  addLogitsCommand(program);
  addGenerateCommand(program);
  addServeCommand(program);
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
    process.stderr.write(`mptjs-serve: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env['MPTJS_DEBUG']) console.error(err);
    return err instanceof UsageError ? 2 : 1;
  }
}
