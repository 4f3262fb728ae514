import { existsSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { type BackendInfo, type BackendRequest, selectBackend } from '@mptjs/alibi-attention';
import * as hf from '@mptjs/hf-loader';
import { MPTModel } from '@mptjs/mpt-model';
import { MptEngine } from '../engine/mpt-engine.js';
import { JsonTokenizer } from '../engine/neox-tokenizer.js';
import type { TextTokenizer } from '../engine/types.js';

export interface LoadModelOptions {
  backend: BackendRequest;
  /** Explicit tokenizer.json path (else the model directory's, else the config's `tokenizer_name` on the hub). */
  tokenizer?: string | undefined;
  /** Where status lines go (stderr by default). */
  log?: (line: string) => void;
}

export interface LoadedModel {
  engine: MptEngine;
  tokenizer: TextTokenizer | undefined;
  /** Local snapshot directory the weights came from. */
  modelDir: string;
  /** The name served in `model` fields: the hub id, or the directory's name. */
  modelId: string;
  backend: BackendInfo;
  loadSeconds: number;
}

type HubResolver = (spec: string) => Promise<string>;

/** hf-loader's hub resolver (`org/name[@rev]` -> local snapshot directory), when this build has one. */
function hubResolver(): HubResolver | undefined {
  const fn = (hf as Record<string, unknown>)['resolveModel'];
  return typeof fn === 'function' ? (fn as HubResolver) : undefined;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** A local directory, or a hub id resolved through the Hugging Face cache. */
export async function resolveModelDir(spec: string): Promise<string> {
  if (isDirectory(spec)) return resolve(spec);
  if (spec.startsWith('.') || spec.startsWith('/') || spec.split('/').length !== 2) {
    throw new Error(`model "${spec}" is not a directory (hub ids look like org/name)`);
  }
  const resolver = hubResolver();
  if (!resolver) throw new Error(`"${spec}" is not a local directory and this build cannot resolve hub ids`);
  return resolver(spec);
}

async function loadTokenizer(modelDir: string, explicit: string | undefined, hubName: string | null) {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`tokenizer file ${explicit} does not exist`);
    return JsonTokenizer.fromFile(explicit);
  }
  const local = join(modelDir, 'tokenizer.json');
  if (existsSync(local)) return JsonTokenizer.fromFile(local);
  const resolver = hubResolver();
  if (!hubName || !resolver) return undefined;
  const dir = await resolver(hubName);
  const path = join(dir, 'tokenizer.json');
  return existsSync(path) ? JsonTokenizer.fromFile(path) : undefined;
}

/** Selects the backend, loads weights and tokenizer, and builds the engine. */
export async function loadModel(spec: string, options: LoadModelOptions): Promise<LoadedModel> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const t0 = performance.now();
  const backend = await selectBackend(options.backend, { log });
  const modelDir = await resolveModelDir(spec);
  const { config, stateDict } = await hf.loadCheckpoint(modelDir);
  const model = MPTModel.fromStateDict(config, stateDict);
  let tokenizer: TextTokenizer | undefined;
  try {
    tokenizer = await loadTokenizer(modelDir, options.tokenizer, config.tokenizerName);
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
    modelId: isDirectory(spec) ? basename(resolve(spec)) : spec,
    backend,
    loadSeconds,
  };
}
