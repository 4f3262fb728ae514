import type { Command } from 'commander';

export function addDataCommands(program: Command): void {
  const data = program.command('data').description('Inspect and prepare training data.');
  data
    .command('stats')
    .description('Draw samples from the configured mixture and report per-stream counts.')
    .argument('<config>', 'path to the YAML config')
    .requiredOption('--samples <n>', 'how many samples to draw')
    .option('--json', 'print JSON')
    .action(async () => {
      throw new Error('data stats is not available in this build yet');
    });
}
