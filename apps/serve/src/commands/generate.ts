import { type BackendRequest, releaseWebGpuDevice } from '@mptjs/kernels';
import {
  backendHeapBytes,
  type OffloadMode,
  type QuantizeMode,
  type SamplingOptions,
} from '@mptjs/mpt-model';
import { type Command, InvalidArgumentError } from 'commander';
import type { Engine, TextTokenizer } from '../engine/types.js';
import { UsageError } from '../errors.js';
import { Generation, type GenerationParams } from '../generation/generation.js';
import { openAiFinishReason } from '../http/run-choices.js';
import { loadModel } from '../model/load-model.js';
import { addBackendOption, addQuantizeOption, intOption, numberOption } from './options.js';

/** The command's options as commander parses them: `--top-p` is already mpt-model's `topP`, and so on. */
interface GenerateOptions
  extends Required<Pick<SamplingOptions, 'temperature' | 'topK' | 'topP' | 'repetitionPenalty'>> {
  prompt?: string;
  promptIds?: number[];
  maxNewTokens: number;
  seed?: number;
  stop: string[];
  tokenizer?: string;
  backend: BackendRequest;
  json?: boolean;
  offload: OffloadMode;
  residentWeightsGib?: number;
  quantize?: QuantizeMode;
}

function offloadMode(value: string): OffloadMode {
  if (value === 'auto' || value === 'on' || value === 'off') return value;
  throw new InvalidArgumentError('expected auto, on or off');
}

export interface GenerateTimings {
  prefill_s: number;
  decode_s: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
}

/** Runs one generation to the end: a prefill, then one decode step per token. */
export async function runGeneration(engine: Engine, generation: Generation): Promise<GenerateTimings> {
  const t0 = performance.now();
  const { sequence, logits } = await engine.prefill(generation.promptIds);
  const t1 = performance.now();
  let steps = 0;
  try {
    let done = generation.advance(logits);
    while (!done) {
      const [next] = await engine.decode([sequence], [generation.lastId]);
      steps++;
      done = generation.advance(next!);
    }
  } finally {
    engine.release(sequence);
  }
  const t2 = performance.now();
  const prefill = (t1 - t0) / 1000;
  const decode = (t2 - t1) / 1000;
  return {
    prefill_s: prefill,
    decode_s: decode,
    prefill_tokens_per_s: generation.promptIds.length / prefill,
    decode_tokens_per_s: steps > 0 ? steps / decode : 0,
  };
}

function parseIds(value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) {
    throw new UsageError(`--prompt-ids must be comma-separated token ids, got "${value}"`);
  }
  return parts.map(Number);
}

function promptIds(
  options: GenerateOptions,
  tokenizer: TextTokenizer | undefined,
  vocabSize: number,
): number[] {
  if (options.promptIds) {
    const bad = options.promptIds.find((id) => id >= vocabSize);
    if (bad !== undefined)
      throw new UsageError(`--prompt-ids holds ${bad}, outside the vocabulary [0, ${vocabSize})`);
    return options.promptIds;
  }
  if (!tokenizer) {
    throw new UsageError(
      '--prompt needs a tokenizer: the model has no tokenizer.json; pass --tokenizer PATH',
    );
  }
  const ids = tokenizer.encode(options.prompt!);
  if (ids.length === 0) throw new UsageError('--prompt encodes to no tokens');
  return ids;
}

export function addGenerateCommand(program: Command): void {
  const command = program
    .command('generate')
    .description('Continue a prompt; streams text to stdout (or prints JSON with --json).')
    .argument('<model>', 'model directory or hub id (org/name[@rev])')
    .option('--prompt <text>', 'prompt text (needs a tokenizer)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, e.g. 1,2,3', parseIds)
    .option('--max-new-tokens <n>', 'tokens to generate', intOption(0), 32)
    .option('--temperature <t>', 'sampling temperature; 0 is greedy', numberOption(0, 100), 0)
    .option('--top-k <k>', 'keep the k most likely tokens (0: all)', intOption(0), 0)
    .option('--top-p <p>', 'nucleus sampling threshold (1: off)', numberOption(0, 1, true), 1)
    .option(
      '--repetition-penalty <r>',
      'divide logits of seen tokens by r (1: off)',
      numberOption(0, 100, true),
      1,
    )
    .option('--seed <s>', 'seed of the sampling generator', intOption(0, 2 ** 32 - 1))
    .option(
      '--stop <text>',
      'stop when the text contains this (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option(
      '--tokenizer <path>',
      "tokenizer.json (default: the model directory's, else the config's tokenizer_name)",
    )
    .option('--json', 'print {"ids", "text", "timings"} as JSON at the end instead of streaming text')
    .option(
      '--offload <mode>',
      'stream block weights from host memory: auto (when they do not fit the wasm heap), on or off',
      offloadMode,
      'auto',
    )
    .option(
      '--resident-weights-gib <n>',
      'weight offload budget: GiB of weights kept in the backend heap (implies --offload on)',
      numberOption(0, 1024, true),
    );
  addQuantizeOption(addBackendOption(command)).action(async (model: string, options: GenerateOptions) => {
    if ((options.prompt === undefined) === (options.promptIds === undefined)) {
      throw new UsageError('give exactly one of --prompt or --prompt-ids');
    }
    if (options.offload === 'off' && options.residentWeightsGib !== undefined) {
      throw new UsageError('--resident-weights-gib needs weight offload; drop --offload off');
    }
    const residentWeightBytes =
      options.residentWeightsGib === undefined ? undefined : Math.floor(options.residentWeightsGib * 2 ** 30);
    const loaded = await loadModel(model, {
      backend: options.backend,
      tokenizer: options.tokenizer,
      offload: { mode: residentWeightBytes === undefined ? options.offload : 'on', residentWeightBytes },
      quantize: options.quantize,
    });
    const { engine, tokenizer } = loaded;
    const prompt = promptIds(options, tokenizer, engine.info.vocabSize);
    if (prompt.length >= engine.info.maxSeqLen) {
      throw new UsageError(`the prompt has ${prompt.length} tokens; max_seq_len is ${engine.info.maxSeqLen}`);
    }
    if (options.stop.length > 0 && !tokenizer) throw new UsageError('--stop needs a tokenizer');
    const params: GenerationParams = {
      maxNewTokens: options.maxNewTokens,
      temperature: options.temperature,
      topK: options.topK,
      topP: options.topP,
      repetitionPenalty: options.repetitionPenalty,
      seed: options.seed,
      stopStrings: options.stop,
      stopIds: tokenizer?.eosTokenId === undefined ? [] : [tokenizer.eosTokenId],
    };
    const stream = !options.json;
    const generation = new Generation(prompt, params, engine.info.maxSeqLen, tokenizer, {
      onDelta(delta) {
        if (!stream) return;
        if (tokenizer) process.stdout.write(delta.text);
        else for (const t of delta.tokens) process.stdout.write(`${t.token} `);
      },
    });
    if (options.maxNewTokens === 0) generation.end('length');
    const timings = options.maxNewTokens === 0 ? undefined : await runGeneration(engine, generation);
    const offload = engine.model.weightOffload;
    const memory = {
      heap_bytes: backendHeapBytes(),
      quantization: engine.model.quantization,
      offload: offload && {
        resident_blocks: offload.residentBlocks,
        streamed_blocks: offload.streamedBlocks,
        resident_weight_bytes: offload.residentBytes,
        peak_tensor_bytes: offload.peakTensorBytes,
      },
    };
    engine.dispose();
    await releaseWebGpuDevice();
    if (stream) {
      process.stdout.write('\n');
      if (timings) {
        process.stderr.write(
          `[mptjs] ${generation.ids.length} tokens (${openAiFinishReason(generation.finishReason)}); prefill ` +
            `${timings.prefill_tokens_per_s.toFixed(1)} tok/s, decode ${timings.decode_tokens_per_s.toFixed(1)} tok/s\n`,
        );
      }
      return;
    }
    const out: Record<string, unknown> = { ids: generation.ids };
    if (tokenizer) out['text'] = generation.text;
    out['finish_reason'] = openAiFinishReason(generation.finishReason);
    out['timings'] = {
      load_s: loaded.loadSeconds,
      prefill_tokens_per_s: timings?.prefill_tokens_per_s ?? 0,
      decode_tokens_per_s: timings?.decode_tokens_per_s ?? 0,
    };
    out['memory'] = memory;
    process.stdout.write(`${JSON.stringify(out)}\n`);
  });
}
