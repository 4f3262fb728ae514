import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { loadCheckpoint, resolveModel } from '@mptjs/hf-loader';
import { type BackendInfo, type BackendRequest, selectBackend } from '@mptjs/kernels';
import {
  chooseOffload,
  formatBytes,
  INT8_BACKENDS,
  MPTModel,
  type OffloadMode,
  type QuantizeMode,
  quantizedWeightBytes,
} from '@mptjs/mpt-model';
import { JsonTokenizer } from '../engine/json-tokenizer.js';
import { MptEngine } from '../engine/mpt-engine.js';
import type { TextTokenizer } from '../engine/types.js';
import { UsageError } from '../errors.js';

export interface LoadModelOptions {
  backend: BackendRequest;
  /** Explicit tokenizer.json path (else the model directory's, else the config's `tokenizer_name` on the hub). */
  tokenizer?: string | undefined;
  /** Load a tokenizer at all (default true; `logits` needs none). */
  withTokenizer?: boolean;
  /** Where status lines go (stderr by default). */
  log?: (line: string) => void;
  /**
   * Weight offload (blocks streamed from host memory): `auto` (default) when the fp32 weights would not fit the
   * wasm heap; `residentWeightBytes` sets the budget of weights kept in the heap.
   */
  offload?: { mode: OffloadMode; residentWeightBytes?: number | undefined };
  /** Weight-only quantization (`int8`: wasm only; never offloaded). */
  quantize?: QuantizeMode | undefined;
}

export interface LoadedModel {
  engine: MptEngine;
  tokenizer: TextTokenizer | undefined;
  /** Local snapshot directory the weights came from. */
  modelDir: string;
  /** Directory of the tokenizer.json in use (its tokenizer_config.json may hold a chat template). */
  tokenizerDir: string | undefined;
  /** The name served in `model` fields: the hub id, or the directory's name. */
  modelId: string;
  backend: BackendInfo;
  loadSeconds: number;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** A local directory, or a hub id resolved through the Hugging Face cache. */
export async function resolveModelDir(spec: string): Promise<string> {
  if (isDirectory(spec)) return resolve(spec);
  if (spec.startsWith('.') || spec.startsWith('/') || spec.split('/').length !== 2) {
    throw new Error(`model "${spec}" is not a directory (hub ids look like org/name[@revision])`);
  }
  return resolveModel(spec);
}

/** Only the tokenizer files of a hub repo (for a config's `tokenizer_name`). */
const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** The tokenizer.json to use: `--tokenizer`, else the model directory's, else `tokenizer_name`'s on the hub. */
async function findTokenizer(modelDir: string, explicit: string | undefined, hubName: string | null) {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`tokenizer file ${explicit} does not exist`);
    return explicit;
  }
  const local = join(modelDir, 'tokenizer.json');
  if (existsSync(local)) return local;
  if (!hubName) return undefined;
  const dir = await resolveModel(hubName, {
    files: (siblings) => siblings.filter((f) => TOKENIZER_FILES.includes(f)),
  });
  const path = join(dir, 'tokenizer.json');
  return existsSync(path) ? path : undefined;
}

/** Selects the backend, loads weights and tokenizer, and builds the engine. */
export async function loadModel(spec: string, options: LoadModelOptions): Promise<LoadedModel> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = performance.now();
  const backend = await selectBackend(options.backend, { log });
  if (options.quantize && !INT8_BACKENDS.includes(backend.name)) {
    throw new UsageError(
      `--quantize ${options.quantize} runs on the ${INT8_BACKENDS.join(' and ')} backends (selected: ${backend.name}); add --backend wasm`,
    );
  }
  const modelDir = await resolveModelDir(spec);
  const { config, stateDict } = await loadCheckpoint(modelDir);
  const { offload, notice } = chooseOffload(config, {
    backend: backend.name,
    mode: options.offload?.mode ?? 'auto',
    maxResidentBytes: options.offload?.residentWeightBytes,
    quantize: options.quantize,
  });
  if (notice) log(notice);
  const model = MPTModel.fromStateDict(
    config,
    stateDict,
    offload ? { offload } : options.quantize ? { quantize: options.quantize } : {},
  );
  if (options.quantize) {
    const bytes = quantizedWeightBytes(config);
    log(`[mptjs] ${options.quantize} weights: ${formatBytes(bytes.fp32)} -> ${formatBytes(bytes.int8)}`);
  }
  let tokenizer: TextTokenizer | undefined;
  let tokenizerPath: string | undefined;
  try {
    if (options.withTokenizer !== false) {
      tokenizerPath = await findTokenizer(modelDir, options.tokenizer, config.tokenizerName);
      tokenizer = tokenizerPath ? await JsonTokenizer.fromFile(tokenizerPath) : undefined;
    }
  } catch (err) {
    if (options.tokenizer) throw err;
    log(`[mptjs] no tokenizer: ${(err as Error).message}`);
  }
  const loadSeconds = (performance.now() - t0) / 1000;
  log(
    `[mptjs] loaded ${modelDir} (d_model ${config.dModel}, ${config.nLayers} layers, max_seq_len ${config.maxSeqLen})` +
      ` in ${loadSeconds.toFixed(2)} s; tokenizer: ${tokenizer ? 'yes' : 'none'}`,
  );
  return {
    engine: new MptEngine(model),
    tokenizer,
    modelDir,
    tokenizerDir: tokenizerPath ? dirname(resolve(tokenizerPath)) : undefined,
    modelId: isDirectory(spec) ? basename(resolve(spec)) : spec,
    backend,
    loadSeconds,
  };
}
