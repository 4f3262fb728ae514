import { fileURLToPath } from 'node:url';
import { parseBackendRequest, WEBGPU_ADAPTER_INDEX_ENV } from '@mptjs/kernels';
import {
  checkpointFolder,
  elasticRestart,
  envRank,
  formatResolvedConfig,
  joinDistributedFromEnv,
  launchLocalRanks,
  loadTrainConfig,
  train,
} from '@mptjs/trainer';
import { type Command, InvalidArgumentError } from 'commander';

interface RunFlags {
  runDir: string;
  backend: string;
  autoresume?: boolean;
  progress: boolean;
  set: string[];
  nproc?: string;
  localRanks?: 'thread' | 'process';
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
  gpuIndex?: number;
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer');
  return n;
}

const collect = (value: string, previous: string[]) => [...previous, value];

function localRanksMode(value: string): 'thread' | 'process' {
  if (value !== 'thread' && value !== 'process')
    throw new InvalidArgumentError("expected 'thread' or 'process'");
  return value;
}

/** The argv of this run without `--nproc`, for the ranks it launches. */
function rankArgs(configPath: string, flags: RunFlags): string[] {
  const args = ['run', configPath, '--run-dir', flags.runDir, '--backend', flags.backend];
  if (flags.autoresume) args.push('--autoresume');
  if (!flags.progress) args.push('--no-progress');
  if (flags.gpuIndex !== undefined) args.push('--gpu-index', String(flags.gpuIndex));
  for (const s of flags.set) args.push('--set', s);
  return args;
}

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('Train a model from an llm-foundry-style YAML config.')
    .argument('<config>', 'path to the YAML config')
    .option('--run-dir <dir>', 'where metrics, checkpoints and the export go', 'runs/latest')
    .option('--backend <name>', 'auto, webgpu, wasm or cpu', 'auto')
    .option('--autoresume', 'continue from RUN_DIR/checkpoints/latest when it exists')
    .option('--no-progress', 'plain per-step lines even when stdout is a terminal (no live progress bar)')
    .option(
      '--set <key=value>',
      'override a config key, e.g. --set optimizer.lr=1e-3 (repeatable)',
      collect,
      [],
    )
    .option('--nproc <n>', 'launch this many local ranks (FSDP); under torchrun variables, omit it')
    .option(
      '--local-ranks <kind>',
      "with --nproc: 'thread' (worker threads over shared memory; the default on one node) or 'process' " +
        '(child processes over TCP; always with --nnodes > 1)',
      localRanksMode,
    )
    .option(
      '--nnodes <n>',
      'machines in the job, each running one launcher with --nproc ranks',
      nonNegativeInt,
    )
    .option('--node-rank <n>', "this machine's index in 0..nnodes-1", nonNegativeInt)
    .option('--master-addr <host>', 'address of node 0, which hosts the rendezvous store')
    .option('--master-port <port>', 'rendezvous port on node 0', nonNegativeInt)
    .option(
      '--gpu-index <n>',
      "which of the machine's WebGPU adapters this rank uses (default: LOCAL_RANK in a multi-rank job)",
      nonNegativeInt,
    )
    .action(async (configPath: string, flags: RunFlags) => {
      const backend = parseBackendRequest(flags.backend);
      const multiNode = [flags.nnodes, flags.nodeRank, flags.masterAddr, flags.masterPort].some(
        (v) => v !== undefined,
      );
      if (multiNode && flags.nproc === undefined)
        throw new Error('--nnodes/--node-rank/--master-* need --nproc');
      if (flags.localRanks !== undefined && flags.nproc === undefined)
        throw new Error('--local-ranks needs --nproc');
      if (flags.localRanks === 'thread' && (flags.nnodes ?? 1) > 1)
        throw new Error(
          '--local-ranks thread runs one node only; use --local-ranks process with --nnodes > 1',
        );
      const { config, resolved } = loadTrainConfig(configPath, flags.set);
      if (flags.nproc !== undefined) {
        const cli = fileURLToPath(new URL('./cli.js', import.meta.url));
        await launchLocalRanks(cli, rankArgs(configPath, flags), Number(flags.nproc), config.distTimeout, {
          localRanks: flags.localRanks ?? ((flags.nnodes ?? 1) > 1 ? 'process' : 'thread'),
          nnodes: flags.nnodes,
          nodeRank: flags.nodeRank,
          masterAddr: flags.masterAddr,
          masterPort: flags.masterPort,
        });
        return;
      }
      // One GPU per rank: the adapter index the backend asks Dawn for.
      const localRank = process.env['LOCAL_RANK'];
      const gpuIndex =
        flags.gpuIndex ??
        (process.env['WORLD_SIZE'] !== undefined && localRank ? Number(localRank) : undefined);
      if (gpuIndex !== undefined) process.env[WEBGPU_ADAPTER_INDEX_ENV] = String(gpuIndex);
      const lead = envRank() === 0;
      if (lead)
        process.stdout.write(`# resolved config (${configPath})\n${formatResolvedConfig(resolved)}\n`);
      const processGroup = await joinDistributedFromEnv(config.distTimeout);
      // torchrun restarted the group after a failure: continue from the latest checkpoint, as --autoresume does.
      const restart = elasticRestart();
      if (restart && lead && !(flags.autoresume ?? config.autoresume)) {
        process.stdout.write(
          `[mptjs] torchrun restart ${restart.restartCount} of ${restart.maxRestarts}: resuming from the latest ` +
            `checkpoint in ${checkpointFolder(config, flags.runDir)} (as --autoresume)\n`,
        );
      }
      try {
        const result = await train({
          config,
          runDir: flags.runDir,
          backend,
          autoresume: (flags.autoresume ?? config.autoresume) || restart !== undefined,
          log: (line) => process.stdout.write(`${line}\n`),
          ...(flags.progress && process.stdout.isTTY
            ? { progress: (text: string) => process.stdout.write(text) }
            : {}),
          ...(processGroup ? { processGroup } : {}),
        });
        if (lead) {
          process.stdout.write(
            `[mptjs] done: ${result.steps} step(s) this run, ${result.timestamp.batches} in total, ` +
              `final loss ${result.finalLoss.toFixed(4)}, export ${result.exportDir}\n`,
          );
        }
      } finally {
        await processGroup?.destroy();
      }
    });
}
