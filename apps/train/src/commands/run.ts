import type { Command } from 'commander';

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('Train a model from an llm-foundry-style YAML config.')
    .argument('<config>', 'path to the YAML config')
    .option('--run-dir <dir>', 'where metrics, checkpoints and the export go', 'runs/latest')
    .option('--backend <name>', 'auto, webgpu, wasm or cpu', 'auto')
    .action(async () => {
      throw new Error('training is not available in this build yet');
    });
}
