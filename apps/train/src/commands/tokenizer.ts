import { existsSync, statSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { openSource } from '@mptjs/data-mixer';
import { Tokenizer, trainBpe } from '@mptjs/tokenizer';
import { type Command, InvalidArgumentError } from 'commander';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Every text document of the JSON-lines or MDS `text` streams under `dirs`, in order. */
async function* streamTexts(dirs: string[], field: string): AsyncGenerator<string> {
  for (const dir of dirs) {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`not a stream directory: ${dir}`);
    const source = await openSource(dir, field);
    for (let unit = 0; unit < source.units.length; unit++) {
      for await (const doc of source.read(unit, 0)) {
        if (typeof doc !== 'string')
          throw new Error(`${dir}: holds token ids, not text; a tokenizer trains on text`);
        yield doc;
      }
    }
  }
}

export function addTokenizerCommands(program: Command): void {
  const tokenizer = program.command('tokenizer').description('Train byte-level BPE tokenizers.');
  tokenizer
    .command('train')
    .description(
      'Train a GPT-NeoX-style byte-level BPE tokenizer.json on the documents of JSON-lines or MDS text streams.',
    )
    .argument('<dirs...>', 'stream directories (JSON-lines files, or an MDS dataset with a text column)')
    .requiredOption('--out <file>', 'where to write tokenizer.json')
    .option('--vocab-size <n>', 'final vocabulary size, special tokens included', positiveInt, 4096)
    .option('--min-frequency <n>', 'pairs seen fewer times are never merged', positiveInt, 2)
    .option('--field <name>', 'JSON-lines field holding the text', 'text')
    .action(
      async (
        dirs: string[],
        opts: { out: string; vocabSize: number; minFrequency: number; field: string },
      ) => {
        const texts: string[] = [];
        for await (const text of streamTexts(dirs, opts.field)) texts.push(text);
        const t0 = performance.now();
        const json = await trainBpe({
          texts,
          vocabSize: opts.vocabSize,
          // The GPT-NeoX special tokens, at the same ids (0 and 1).
          specialTokens: ['<|endoftext|>', '<|padding|>'],
          minFrequency: opts.minFrequency,
        });
        const text = JSON.stringify(json);
        // Loading it back proves the file is a valid tokenizer.json before it replaces anything.
        const tok = Tokenizer.fromJSON(text);
        await mkdir(dirname(opts.out), { recursive: true });
        const tmp = `${opts.out}.tmp-${process.pid}`;
        await writeFile(tmp, text);
        await rename(tmp, opts.out);
        const seconds = (performance.now() - t0) / 1000;
        process.stdout.write(
          `trained a ${tok.vocabSize}-token BPE on ${texts.length} documents in ${seconds.toFixed(1)} s -> ${opts.out}\n`,
        );
      },
    );
}
