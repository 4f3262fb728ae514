// The real MPT model (ALiBi, QK-LayerNorm, tied wte) trained unit by unit under FSDP: 2 and 4 ranks give the same
// loss at every step as 1 rank with the same global batch, over 30 steps, and end with the same full weights.
import { createLocalGroups, type ProcessGroup } from '@mptjs/distributed';
import { selectBackend } from '@mptjs/kernels';
import {
  type AttentionContext,
  type ChainUnit,
  crossEntropyLoss,
  expectedParameterShapes,
  forwardBackwardChain,
  IGNORE_INDEX,
  MPTModel,
  parseMptConfig,
  type StateDict,
} from '@mptjs/mpt-model';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { seededUniform } from '../testing/tiny-model.js';
import { FsdpParameters, type ShardingStrategy } from './fsdp.js';

const config = parseMptConfig({
  model_type: 'mpt',
  d_model: 16,
  n_heads: 2,
  n_layers: 2,
  expansion_ratio: 2,
  max_seq_len: 16,
  vocab_size: 32,
  no_bias: true,
  attn_config: { alibi: true, qk_ln: true, alibi_bias_max: 8 },
});
const GLOBAL_BATCH = 4;
const SEQ = 8;

interface Ctx {
  targets: tf.Tensor;
  attention: AttentionContext;
}

let model: MPTModel;
let init: StateDict;
beforeAll(async () => {
  await selectBackend('cpu', { log: false });
  model = MPTModel.init(config, 7);
  init = await model.toStateDict();
});

function chain(): ChainUnit<Ctx>[] {
  const units = model.units();
  return units.map((u, i) => ({
    name: u.name,
    paramNames: u.paramNames,
    inputIsDifferentiable: i > 0,
    forward: (params, input, ctx) => {
      const out = u.forward(params, input, ctx.attention);
      return i === units.length - 1 ? crossEntropyLoss(out, ctx.targets) : out;
    },
  }));
}

interface Trained {
  losses: number[];
  /** The consolidated weights after the last step (every rank gathers them). */
  final: StateDict;
}

async function train(pg: ProcessGroup, strategy: ShardingStrategy, steps: number): Promise<Trained> {
  const units = chain();
  const fsdp = await FsdpParameters.create(
    pg,
    { units, paramShapes: expectedParameterShapes(config), strategy },
    pg.rank === 0 ? init : null,
  );
  const rand = seededUniform(3);
  const local = GLOBAL_BATCH / pg.worldSize;
  const losses: number[] = [];
  for (let step = 0; step < steps; step++) {
    const ids = Array.from({ length: GLOBAL_BATCH * SEQ }, () =>
      Math.floor(((rand() + 1) / 2) * config.vocabSize),
    );
    const mine = ids.slice(pg.rank * local * SEQ, (pg.rank + 1) * local * SEQ);
    const targets = mine.map((_, k) => ((k + 1) % SEQ === 0 ? IGNORE_INDEX : mine[k + 1]!));
    const x = tf.tensor2d(mine, [local, SEQ], 'int32');
    const ctx: Ctx = {
      targets: tf.tensor2d(targets, [local, SEQ], 'int32'),
      attention: { slopes: model.slopes, pastLength: 0, keyMask: null },
    };
    const loss = await forwardBackwardChain(units, x, ctx, fsdp);
    x.dispose();
    ctx.targets.dispose();
    const grads = fsdp.takeGradients();
    let sq = 0;
    for (const g of grads.values()) sq += tf.tidy(() => tf.sum(tf.square(g)).dataSync()[0]!);
    const coef = Math.min(1, 1.0 / (Math.sqrt(await fsdp.globalSumOfSquares(sq)) + 1e-6));
    for (const [name, v] of fsdp.optimizerParameters()) {
      const next = tf.tidy(() => tf.sub(v, tf.mul(grads.get(name)!, 0.5 * coef)));
      v.assign(next);
      next.dispose();
      grads.get(name)!.dispose();
    }
    losses.push((await pg.allReduce(new Float32Array([loss]), 'avg'))[0]!);
  }
  const final = (await fsdp.fullStateDict({ allRanks: true }))!;
  fsdp.dispose();
  return { losses, final };
}

async function run(w: number, strategy: ShardingStrategy, steps: number): Promise<Trained[]> {
  const groups = createLocalGroups(w, { timeoutMs: 30_000 });
  try {
    return await Promise.all(groups.map((pg) => train(pg, strategy, steps)));
  } finally {
    await Promise.all(groups.map((g) => g.destroy()));
  }
}

const STEPS = 30;

function maxAbsDiff(a: StateDict, b: StateDict): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = 0;
  for (const [name, t] of a) {
    const u = b.get(name)!;
    expect(u.shape).toEqual(t.shape);
    for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(t.data[i]! - u.data[i]!));
  }
  return worst;
}

describe('FSDP over the MPT unit chain (embed, blocks, head with tied wte)', () => {
  it(`2 and 4 ranks (FULL_SHARD) and 2 ranks (SHARD_GRAD_OP) match 1 rank at each of ${STEPS} steps and in the final weights`, async () => {
    const [reference] = await run(1, 'FULL_SHARD', STEPS);
    const ref = reference!;
    expect(ref.losses[STEPS - 1]!).toBeLessThan(0.9 * ref.losses[0]!);
    // The weights moved: comparing them below means something.
    expect(maxAbsDiff(ref.final, init)).toBeGreaterThan(1e-2);
    for (const [w, strategy] of [
      [2, 'FULL_SHARD'],
      [4, 'FULL_SHARD'],
      [2, 'SHARD_GRAD_OP'],
    ] as const) {
      const ranks = await run(w, strategy, STEPS);
      for (const r of ranks) {
        expect(r.losses).toHaveLength(STEPS);
        r.losses.forEach((l, i) => {
          expect(
            Math.abs(l - ref.losses[i]!) / ref.losses[i]!,
            `${w} ranks ${strategy}, step ${i}`,
          ).toBeLessThan(1e-5);
        });
        expect(maxAbsDiff(r.final, ref.final), `${w} ranks ${strategy}, final weights`).toBeLessThan(1e-5);
      }
    }
  });
});
