// What one rank holds between steps under FULL_SHARD, for the trainer bench's MPT (d_model 256, 4 layers, 4 heads,
// vocab 8192, 5.2 M parameters): its flat parameter shards, the gradient shards it hands the optimizer and two Adam
// slots (exp_avg, exp_avg_sq) per shard element. At N ranks this is 1/N of what one rank holds, padding aside.
// Counted two ways: from the shard tensors each rank owns, and from the tensor engine's byte count (all ranks of
// an in-process group share one engine, so its growth divided by N is the per-rank figure).
import { createLocalGroups } from '@mptjs/distributed';
import { selectBackend } from '@mptjs/kernels';
import {
  expectedParameterShapes,
  MPTModel,
  parseMptConfig,
  type StateDict,
  type UnitDescriptor,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { FsdpParameters } from './fsdp.js';

const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 256,
  n_heads: 4,
  n_layers: 4,
  expansion_ratio: 4,
  max_seq_len: 128,
  vocab_size: 8192,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true },
});

interface RankBytes {
  params: number;
  grads: number;
  adam: number;
  total: number;
  engine: number;
}

let units: UnitDescriptor[];
let stateDict: StateDict;
let numParameters: number;
beforeAll(async () => {
  await selectBackend('cpu', { log: false });
  const model = MPTModel.init(config, 1);
  units = model.units().map((u) => ({ name: u.name, paramNames: u.paramNames }));
  stateDict = await model.toStateDict();
  numParameters = model.numParameters;
  model.dispose();
});

const bytesOf = (ts: Iterable<tf.Tensor>) => [...ts].reduce((n, t) => n + t.size * 4, 0);

async function measure(w: number): Promise<RankBytes> {
  const groups = createLocalGroups(w, { timeoutMs: 60_000 });
  const engineBefore = tf.memory().numBytes;
  try {
    const ranks = await Promise.all(
      groups.map(async (pg) => {
        const fsdp = await FsdpParameters.create(
          pg,
          { units, paramShapes: expectedParameterShapes(config), strategy: 'FULL_SHARD' },
          pg.rank === 0 ? stateDict : null,
        );
        const shards = [...fsdp.optimizerParameters().values()];
        const grads = fsdp.takeGradients();
        const slots = shards.flatMap((s) => [tf.zerosLike(s), tf.zerosLike(s)]);
        return { fsdp, grads, slots, shards };
      }),
    );
    const engine = (tf.memory().numBytes - engineBefore) / w;
    const per = ranks.map((r) => {
      const params = bytesOf(r.shards);
      const grads = bytesOf(r.grads.values());
      const adam = bytesOf(r.slots);
      return { params, grads, adam, total: params + grads + adam, engine };
    });
    // Every rank holds the same amount (groups are padded to a multiple of the world size).
    for (const p of per) expect(p).toEqual(per[0]);
    for (const r of ranks) {
      tf.dispose([...r.grads.values(), ...r.slots]);
      r.fsdp.dispose();
    }
    return per[0]!;
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

describe('FSDP memory per rank (FULL_SHARD, the trainer bench MPT)', () => {
  it('parameter, gradient and Adam shards at 2 and 4 ranks are 1/N of one rank (within 10%)', async () => {
    const engineAtStart = tf.memory().numBytes;
    const one = await measure(1);
    expect(one.params).toBe(numParameters * 4); // one rank holds everything, unpadded
    expect(one.adam).toBe(2 * one.params);
    const rows = [{ w: 1, ...one, ratio: 1 }];
    for (const w of [2, 4]) {
      const got = await measure(w);
      const ratio = got.total / (one.total / w);
      rows.push({ w, ...got, ratio });
      expect(Math.abs(got.params / (one.params / w) - 1)).toBeLessThan(0.1);
      expect(Math.abs(got.adam / (one.adam / w) - 1)).toBeLessThan(0.1);
      expect(Math.abs(ratio - 1)).toBeLessThan(0.1);
    }
    // The engine saw exactly these tensors and nothing else stays behind.
    for (const r of rows) expect(r.engine).toBe(r.total);
    expect(tf.memory().numBytes).toBe(engineAtStart);
    const mb = (n: number) => (n / 1e6).toFixed(3);
    console.log(
      [
        `parameters: ${numParameters}`,
        'ranks | params MB | grads MB | Adam MB | total MB | engine MB | total / (1-rank total / N)',
        ...rows.map(
          (r) =>
            `${r.w} | ${mb(r.params)} | ${mb(r.grads)} | ${mb(r.adam)} | ${mb(r.total)} | ${mb(r.engine)} | ${r.ratio.toFixed(6)}`,
        ),
      ].join('\n'),
    );
  });
});
