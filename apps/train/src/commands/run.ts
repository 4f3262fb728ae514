import { parseBackendRequest } from '@mptjs/alibi-attention';
import { formatResolvedConfig, loadTrainConfig, train } from '@mptjs/trainer';
import type { Command } from 'commander';

interface RunFlags {
  runDir: string;
  backend: string;
  autoresume?: boolean;
  set: string[];
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('Train a model from an llm-foundry-style YAML config.')
    .argument('<config>', 'path to the YAML config')
    .option('--run-dir <dir>', 'where metrics, checkpoints and the export go', 'runs/latest')
    .option('--backend <name>', 'auto, webgpu, wasm or cpu', 'auto')
    .option('--autoresume', 'continue from RUN_DIR/checkpoints/latest when it exists')
    .option(
      '--set <key=value>',
      'override a config key, e.g. --set optimizer.lr=1e-3 (repeatable)',
      collect,
      [],
    )
    .action(async (configPath: string, flags: RunFlags) => {
      const backend = parseBackendRequest(flags.backend);
      const { config, resolved } = loadTrainConfig(configPath, flags.set);
      process.stdout.write(`# resolved config (${configPath})\n${formatResolvedConfig(resolved)}\n`);
      const result = await train({
        config,
        resolved,
        runDir: flags.runDir,
        backend,
        autoresume: flags.autoresume ?? config.autoresume,
        log: (line) => process.stdout.write(`${line}\n`),
      });
      process.stdout.write(
        `[mptjs] done: ${result.steps} step(s) this run, ${result.timestamp.batches} in total, ` +
          `final loss ${result.finalLoss.toFixed(4)}, export ${result.exportDir}\n`,
      );
    });
}
