import { EXPORT_DTYPES, type ExportDtype, exportTrainingCheckpoint } from '@mptjs/trainer';
import { type Command, InvalidArgumentError, Option } from 'commander';

interface ExportFlags {
  out: string;
  dtype: ExportDtype;
  tokenizer?: string;
}

function parseDtype(value: string): ExportDtype {
  const upper = value.toUpperCase();
  if (!(EXPORT_DTYPES as readonly string[]).includes(upper))
    throw new InvalidArgumentError(`expected one of ${EXPORT_DTYPES.join(', ')}`);
  return upper as ExportDtype;
}

export function addExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'Turn a training checkpoint into a Hugging Face directory (config.json, model.safetensors, tokenizer.json).',
    )
    .argument('<checkpoint>', 'RUN_DIR/checkpoints/<name>, or RUN_DIR for its latest checkpoint')
    .requiredOption('--out <dir>', 'the directory to write')
    .addOption(
      new Option('--dtype <dtype>', `weights dtype: ${EXPORT_DTYPES.join(', ')}`)
        .default('F32')
        .argParser(parseDtype),
    )
    .option('--tokenizer <path>', "a tokenizer.json to ship (default: the checkpoint's or the run's)")
    .action(async (checkpoint: string, flags: ExportFlags) => {
      const r = await exportTrainingCheckpoint(checkpoint, flags.out, {
        dtype: flags.dtype,
        ...(flags.tokenizer ? { tokenizerFile: flags.tokenizer } : {}),
      });
      process.stdout.write(
        `[mptjs] exported ${r.checkpoint}${r.batches !== undefined ? ` (batch ${r.batches})` : ''} -> ${r.outDir} ` +
          `(${flags.dtype}${r.tokenizer ? ', tokenizer.json' : ', no tokenizer'})\n`,
      );
    });
}
