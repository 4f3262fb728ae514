import { existsSync } from 'node:fs';
import { readSafetensors, writeSafetensors } from '@mptjs/hf-loader';
import { type BackendRequest, releaseWebGpuDevice } from '@mptjs/kernels';
import type { QuantizeMode } from '@mptjs/mpt-model';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { loadModel } from '../model/load-model.js';
import { addBackendOption, addQuantizeOption } from './options.js';

interface LogitsOptions {
  input: string;
  out: string;
  backend: BackendRequest;
  quantize?: QuantizeMode;
}

/** Reads `input_ids` (I64 or I32, [B, T]) from a safetensors file as rows of numbers. */
export async function readInputIds(path: string): Promise<number[][]> {
  if (!existsSync(path)) throw new UsageError(`--input ${path} does not exist`);
  const tensors = await readSafetensors(path, { names: ['input_ids'] });
  const t = tensors.get('input_ids')!;
  if (t.dtype !== 'I64' && t.dtype !== 'I32') {
    throw new Error(`${path}: input_ids must be I64 or I32, got ${t.dtype}`);
  }
  if (t.shape.length !== 2 || t.shape[0] === 0 || t.shape[1] === 0) {
    throw new Error(`${path}: input_ids must have shape [B, T] with B, T >= 1, got [${t.shape.join(', ')}]`);
  }
  const [b, n] = t.shape as [number, number];
  const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
  return Array.from({ length: b }, (_, i) => values.slice(i * n, (i + 1) * n));
}

export function addLogitsCommand(program: Command): void {
  const command = program
    .command('logits')
    .description('Compute logits [B, T, V] (F32) for the input_ids [B, T] in a safetensors file.')
    .argument('<model>', 'model directory or hub id (org/name[@rev])')
    .requiredOption('--input <file>', 'safetensors file with an I64 or I32 tensor input_ids [B, T]')
    .requiredOption('--out <file>', 'safetensors file to write the F32 tensor logits [B, T, V] to');
  addQuantizeOption(addBackendOption(command)).action(async (model: string, options: LogitsOptions) => {
    const ids = await readInputIds(options.input);
    const loaded = await loadModel(model, {
      backend: options.backend,
      withTokenizer: false,
      quantize: options.quantize,
    });
    const { vocabSize, maxSeqLen } = loaded.engine.info;
    const [b, t] = [ids.length, ids[0]!.length];
    if (t > maxSeqLen)
      throw new Error(`input_ids has ${t} positions; the model's max_seq_len is ${maxSeqLen}`);
    const bad = ids.flat().find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
    if (bad !== undefined)
      throw new Error(`input_ids holds ${bad}, outside the vocabulary [0, ${vocabSize})`);
    const logits = await loaded.engine.logits(ids);
    await writeSafetensors(options.out, { logits: { shape: [b, t, vocabSize], data: logits, dtype: 'F32' } });
    loaded.engine.dispose();
    await releaseWebGpuDevice();
    process.stderr.write(`[mptjs] wrote logits [${b}, ${t}, ${vocabSize}] to ${options.out}\n`);
  });
}
