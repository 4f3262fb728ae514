import { resolve } from 'node:path';
import { formatMixStats, loadDataRunConfig, mixStats, prepareStreams } from '@mptjs/data-mixer';
import { type Command, InvalidArgumentError } from 'commander';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`expected a positive integer, got ${value}`);
  return n;
}

/** `data stats` and `data prepare`: inspect the configured mixture, or pack it into MDS datasets. */
export function addDataCommands(program: Command): void {
  const data = program.command('data').description('Inspect and prepare training data.');
  data
    .command('stats')
    .description('Draw samples from the configured mixture and report per-stream counts.')
    .argument('<config>', 'path to the YAML config (uses its tokenizer, max_seq_len and train_loader)')
    .requiredOption('--samples <n>', 'how many samples to draw', positiveInt)
    .option('--json', 'print JSON')
    .action(async (configPath: string, opts: { samples: number; json?: boolean }) => {
      const config = loadDataRunConfig(configPath);
      const stats = await mixStats(config.mixer, { path: config.tokenizerPath }, opts.samples);
      if (opts.json) process.stdout.write(`${JSON.stringify({ streams: stats.streams })}\n`);
      else {
        const { maxSeqLen, shuffleSeed } = config.mixer;
        const head = `${opts.samples} samples of ${maxSeqLen} tokens (shuffle_seed ${shuffleSeed}, tokenizer ${config.tokenizerPath})`;
        process.stdout.write(`${head}\n${formatMixStats(stats)}\n`);
      }
    });
  data
    .command('prepare')
    .description(
      'Tokenise and pack each stream into an MDS dataset (zstd shards, `tokens` column), one directory per stream.',
    )
    .argument('<config>', 'path to the YAML config')
    .requiredOption('--out <dir>', 'output directory')
    .option('--compression <name>', 'shard compression: zstd, zstd:<level> or none', 'zstd')
    .action(async (configPath: string, opts: { out: string; compression: string }) => {
      const config = loadDataRunConfig(configPath);
      const compression = opts.compression === 'none' ? null : opts.compression;
      const prepared = await prepareStreams(config.mixer, { path: config.tokenizerPath }, opts.out, {
        compression,
      });
      for (const p of prepared) {
        process.stdout.write(
          `${p.name}: ${p.documents} documents -> ${p.samples} samples of ${config.mixer.maxSeqLen} tokens in ${p.index.shards.length} shard(s) at ${resolve(p.dir)} (dropped ${p.droppedTokens} tail tokens)\n`,
        );
      }
    });
}
