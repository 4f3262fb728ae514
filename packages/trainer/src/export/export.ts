import { copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { type FloatDtype, loadCheckpoint, saveCheckpoint } from '@mptjs/hf-loader';
import type { MPTConfig, StateDict } from '@mptjs/mpt-model';

export const EXPORT_DTYPES = ['F32', 'F16', 'BF16'] as const satisfies readonly FloatDtype[];
export type ExportDtype = (typeof EXPORT_DTYPES)[number];

export interface ExportOptions {
  /** Storage dtype of model.safetensors (default F32, what training uses). */
  dtype?: ExportDtype;
  /** A tokenizer.json copied next to the weights, when the run has one. */
  tokenizerFile?: string;
}

/**
 * Writes a Hugging Face directory that `mptjs-serve` and `loadCheckpoint` read: config.json (llm-foundry `mpt`
 * dialect), model.safetensors and, when given, tokenizer.json. Both the end-of-run export and `mptjs-train
 * export` go through here.
 */
export async function exportHfDirectory(
  outDir: string,
  config: MPTConfig,
  stateDict: StateDict,
  opts: ExportOptions = {},
): Promise<void> {
  await saveCheckpoint(outDir, config, stateDict, { dtype: opts.dtype ?? 'F32' });
  if (opts.tokenizerFile) copyFileSync(opts.tokenizerFile, join(outDir, 'tokenizer.json'));
}

/** A training checkpoint directory: `path` itself when it holds state.json, else the one `path/checkpoints/latest` (or `path/latest`) names. */
export function resolveTrainingCheckpoint(path: string): string {
  const abs = resolve(path);
  if (existsSync(join(abs, 'state.json'))) return abs;
  for (const ckptDir of [join(abs, 'checkpoints'), abs]) {
    const latest = join(ckptDir, 'latest');
    if (existsSync(latest) && statSync(latest).isFile()) {
      const dir = join(ckptDir, readFileSync(latest, 'utf8').trim());
      if (existsSync(join(dir, 'state.json'))) return dir;
      throw new Error(`${latest} names ${dir}, which is not a complete checkpoint`);
    }
  }
  throw new Error(
    `${path} is neither a training checkpoint (no state.json) nor a run directory with checkpoints/latest`,
  );
}

/**
 * The tokenizer.json that goes with a training checkpoint: the one saved in the checkpoint, else the one in the
 * run's end-of-run export (RUN_DIR/export), else undefined.
 */
export function checkpointTokenizer(checkpointDir: string): string | undefined {
  const runDir =
    basename(dirname(checkpointDir)) === 'checkpoints' ? dirname(dirname(checkpointDir)) : undefined;
  const candidates = [join(checkpointDir, 'tokenizer.json')];
  if (runDir) candidates.push(join(runDir, 'export', 'tokenizer.json'));
  return candidates.find((p) => existsSync(p));
}

export interface ExportedCheckpoint {
  checkpoint: string;
  outDir: string;
  tokenizer?: string;
  batches?: number;
}

/** Turns a training checkpoint (or a run directory: its latest) into a Hugging Face directory at `outDir`. */
export async function exportTrainingCheckpoint(
  path: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<ExportedCheckpoint> {
  const checkpoint = resolveTrainingCheckpoint(path);
  if (resolve(outDir) === checkpoint) throw new Error('--out must differ from the checkpoint directory');
  const { config, stateDict } = await loadCheckpoint(checkpoint);
  const tokenizer = opts.tokenizerFile ?? checkpointTokenizer(checkpoint);
  await exportHfDirectory(outDir, config, stateDict, {
    ...opts,
    ...(tokenizer ? { tokenizerFile: tokenizer } : {}),
  });
  const state = JSON.parse(readFileSync(join(checkpoint, 'state.json'), 'utf8')) as {
    timestamp?: { batches?: number };
  };
  const result: ExportedCheckpoint = { checkpoint, outDir: resolve(outDir) };
  if (tokenizer) result.tokenizer = tokenizer;
  if (typeof state.timestamp?.batches === 'number') result.batches = state.timestamp.batches;
  return result;
}
