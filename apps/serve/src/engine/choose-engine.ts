import { MAX_RECORDED_SLOTS, type WeightFormat } from '@mptjs/mpt-model';
import { UsageError } from '../errors.js';
import type { MptEngine } from './mpt-engine.js';
import { RecordedEngine } from './recorded-engine.js';
import type { Engine } from './types.js';

/** How `serve` decodes: `recorded` (the batched recorded WebGPU step), `tfjs` (the model's tfjs kernels), or `auto`. */
export type DecodeEngineChoice = 'auto' | 'recorded' | 'tfjs';
export const DECODE_ENGINES: readonly DecodeEngineChoice[] = ['auto', 'recorded', 'tfjs'];

export interface ChosenEngine {
  engine: Engine;
  /** Most sequences decoded together: `maxBatch`, or fewer when the recorded step holds fewer. */
  maxBatch: number;
}

/**
 * The engine `serve` runs: with `auto`, the recorded step on the webgpu backend when it can be built (else the tfjs
 * engine, with a line saying why); with `recorded`, that step or an error; with `tfjs`, `tfjsEngine` as is.
 */
export async function chooseDecodeEngine(
  tfjsEngine: MptEngine,
  options: {
    choice: DecodeEngineChoice;
    backend: string;
    maxBatch: number;
    log: (line: string) => void;
    /** The recorded step's weight format (default f32); f16 with `choice` tfjs is refused. */
    weights?: WeightFormat;
  },
): Promise<ChosenEngine> {
  const { choice, backend, maxBatch, log } = options;
  const weights = options.weights ?? 'f32';
  if (choice === 'tfjs' && weights !== 'f32') {
    throw new UsageError(
      `--decode-weights ${weights} applies to the recorded engine, not --decode-engine tfjs`,
    );
  }
  const tfjs = (why: string): ChosenEngine => {
    log(`[mptjs] decode engine: tfjs${why}`);
    return { engine: tfjsEngine, maxBatch };
  };
  if (choice === 'tfjs') return tfjs('');
  if (backend !== 'webgpu') {
    if (choice === 'recorded') {
      throw new UsageError(
        `--decode-engine recorded runs on the webgpu backend (selected: ${backend}); add --backend webgpu`,
      );
    }
    return tfjs('');
  }
  let engine: RecordedEngine;
  try {
    engine = await RecordedEngine.create(tfjsEngine.model, Math.min(maxBatch, MAX_RECORDED_SLOTS), weights);
  } catch (err) {
    const reason = (err as Error).message;
    if (choice === 'recorded') throw new Error(`--decode-engine recorded: ${reason}`);
    return tfjs(` (the recorded step is unavailable: ${reason})`);
  }
  const clamped = engine.slots < maxBatch ? ` (--max-batch ${maxBatch} lowered to the slots)` : '';
  const read = engine.weightStats;
  const mib = (read.bytesPerStep / 2 ** 20).toFixed(1);
  log(
    `[mptjs] decode engine: recorded, ${engine.slots} slots, ${engine.stepStats.dispatchesPerStep} dispatches per step, ` +
      `${read.format} weights (${mib} MiB read per step)${clamped}`,
  );
  return { engine, maxBatch: Math.min(maxBatch, engine.slots) };
}
