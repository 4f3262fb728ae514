// A checkpoint fixture as the model-path tests read it: the loaded checkpoint, and the input ids and logits
// PyTorch gave for it (expected.safetensors beside the weights).
import { join } from 'node:path';
import type { MPTConfig, StateDict } from '@mptjs/mpt-model';
import { loadCheckpoint } from '../checkpoint.js';
import { readSafetensors } from '../safetensors.js';

export interface Fixture {
  dir: string;
  config: MPTConfig;
  stateDict: StateDict;
  inputIds: number[][];
  logits: { shape: number[]; data: Float32Array };
}

export async function loadFixture(dir: string): Promise<Fixture> {
  const { config, stateDict } = await loadCheckpoint(dir);
  const expected = await readSafetensors(join(dir, 'expected.safetensors'));
  const ids = expected.get('input_ids');
  const logits = expected.get('logits');
  if (!ids || !logits) throw new Error(`${dir}/expected.safetensors needs input_ids and logits`);
  const [b, t] = ids.shape as [number, number];
  const flat = Array.from(ids.data as ArrayLike<number | bigint>, Number);
  const inputIds = Array.from({ length: b }, (_, i) => flat.slice(i * t, (i + 1) * t));
  return {
    dir,
    config,
    stateDict,
    inputIds,
    logits: { shape: logits.shape, data: logits.data as Float32Array },
  };
}
