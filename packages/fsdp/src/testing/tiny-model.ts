// A small self-contained unit chain with a tied weight (like MPT's wte), run by the unit-chain driver the trainer
// uses, and an SGD loop with global-norm clipping: enough to show that N sharded ranks train exactly like one rank
// with the same global batch.

import type { ProcessGroup } from '@mptjs/distributed';
import { type ChainUnit, forwardBackwardChain, type ParamMap, type StateDict } from '@mptjs/mpt-model';
import { seededRandom } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { type FsdpOptions, FsdpParameters, type ShardingStrategy } from '../fsdp/fsdp.js';
import type { StepRecord } from '../fsdp/profile.js';

export const TINY_IN = 6;
export const TINY_HIDDEN = 8;

/** Tiny-chain units take the regression target as their context. */
export type TinyUnit = ChainUnit<tf.Tensor>;

const p = (params: ParamMap, name: string) => params.get(name)!;

/** `in` -> `block.0` .. `block.{n-1}` -> `head` (which reuses `in.weight`, transposed) -> MSE loss. */
export function tinyUnits(blocks = 2): TinyUnit[] {
  const units: TinyUnit[] = [
    {
      name: 'in',
      paramNames: ['in.weight'],
      inputIsDifferentiable: false,
      forward: (params, x) => tf.tanh(tf.matMul(x, p(params, 'in.weight'))),
    },
  ];
  for (let i = 0; i < blocks; i++) {
    units.push({
      name: `block.${i}`,
      paramNames: [`block.${i}.weight`, `block.${i}.gain`],
      inputIsDifferentiable: true,
      forward: (params, h) =>
        tf.add(
          h,
          tf.mul(tf.tanh(tf.matMul(h, p(params, `block.${i}.weight`))), p(params, `block.${i}.gain`)),
        ),
    });
  }
  units.push({
    name: 'head',
    paramNames: ['head.gain', 'in.weight'],
    inputIsDifferentiable: true,
    forward: (params, h, y) => {
      const pred = tf.matMul(tf.mul(h, p(params, 'head.gain')), p(params, 'in.weight'), false, true);
      return tf.mean(tf.square(tf.sub(pred, y)));
    },
  });
  return units;
}

export function tinyShapes(blocks = 2): Map<string, number[]> {
  const shapes = new Map<string, number[]>([['in.weight', [TINY_IN, TINY_HIDDEN]]]);
  for (let i = 0; i < blocks; i++) {
    shapes.set(`block.${i}.weight`, [TINY_HIDDEN, TINY_HIDDEN]);
    shapes.set(`block.${i}.gain`, [TINY_HIDDEN]);
  }
  shapes.set('head.gain', [TINY_HIDDEN]);
  return shapes;
}

/** Deterministic uniform numbers in [-1, 1), from the tests' seeded generator. */
export function seededUniform(seed: number): () => number {
  const next = seededRandom(seed);
  return () => next() * 2 - 1;
}

export function tinyStateDict(seed: number, blocks = 2): StateDict {
  const rand = seededUniform(seed);
  const sd: StateDict = new Map();
  for (const [name, shape] of tinyShapes(blocks)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const gain = name.endsWith('gain');
    sd.set(name, {
      shape,
      data: Float32Array.from({ length: n }, () => (gain ? 1 + 0.1 * rand() : 0.5 * rand())),
    });
  }
  return sd;
}

export interface TinyTrainOptions {
  strategy?: ShardingStrategy;
  steps?: number;
  globalBatch?: number;
  lr?: number;
  maxGradNorm?: number;
  seed?: number;
  /** Only rank 0 holds the initial state dict (the others receive it by broadcast). */
  rank0Init?: boolean;
  /** Microbatches per rank and step; gradients accumulate across them (scaled by 1 / microbatches). */
  microbatches?: number;
  /** Awaited before each step's first microbatch (fault tests stop a rank there). */
  beforeStep?: (step: number) => void | Promise<void>;
  /** More FSDP options (how gradients leave the device, profiling, transfer events). */
  fsdp?: Pick<FsdpOptions, 'bucketGradients' | 'profile' | 'onTransfer' | 'prefetch'>;
}

export interface TinyTrainResult {
  losses: number[];
  gradNorms: number[];
  final: StateDict | null;
  /** Each step's FSDP profile. */
  profiles: StepRecord[];
}

/** SGD on the tiny chain under FSDP; every rank takes its slice of the same global batch at each step. */
export async function trainTiny(pg: ProcessGroup, opts: TinyTrainOptions = {}): Promise<TinyTrainResult> {
  const { steps = 5, globalBatch = 12, lr = 0.2, maxGradNorm = 0.5, seed = 1 } = opts;
  if (globalBatch % pg.worldSize !== 0)
    throw new Error(`global batch ${globalBatch} does not split over ${pg.worldSize} ranks`);
  const units = tinyUnits();
  const init = opts.rank0Init && pg.rank !== 0 ? null : tinyStateDict(seed);
  const fsdp = await FsdpParameters.create(
    pg,
    { units, paramShapes: tinyShapes(), strategy: opts.strategy, ...opts.fsdp },
    init,
  );
  const rand = seededUniform(seed + 1000);
  const local = globalBatch / pg.worldSize;
  const losses: number[] = [];
  const gradNorms: number[] = [];
  const profiles: StepRecord[] = [];
  for (let step = 0; step < steps; step++) {
    await opts.beforeStep?.(step);
    const xs = Float32Array.from({ length: globalBatch * TINY_IN }, rand);
    const ys = Float32Array.from({ length: globalBatch * TINY_IN }, rand);
    const rows = (a: Float32Array) => a.slice(pg.rank * local * TINY_IN, (pg.rank + 1) * local * TINY_IN);
    const micro = opts.microbatches ?? 1;
    const rowsPerMicro = local / micro;
    let loss = 0;
    for (let m = 0; m < micro; m++) {
      const part = (a: Float32Array) =>
        rows(a).slice(m * rowsPerMicro * TINY_IN, (m + 1) * rowsPerMicro * TINY_IN);
      const x = tf.tensor2d(part(xs), [rowsPerMicro, TINY_IN]);
      const y = tf.tensor2d(part(ys), [rowsPerMicro, TINY_IN]);
      loss += (await forwardBackwardChain(units, x, y, fsdp, 1 / micro)) / micro;
      x.dispose();
      y.dispose();
    }
    const grads = fsdp.takeGradients();
    profiles.push(fsdp.lastStepProfile!);
    let localSq = 0;
    for (const g of grads.values()) {
      const sq = tf.tidy(() => tf.sum(tf.square(g)));
      localSq += (await sq.data())[0]!;
      sq.dispose();
    }
    const norm = Math.sqrt(await fsdp.globalSumOfSquares(localSq));
    const coef = Math.min(1, maxGradNorm / (norm + 1e-6));
    for (const [name, v] of fsdp.optimizerParameters()) {
      const g = grads.get(name)!;
      const next = tf.tidy(() => tf.sub(v, tf.mul(g, lr * coef)));
      v.assign(next);
      next.dispose();
      g.dispose();
    }
    losses.push((await pg.allReduce(new Float32Array([loss]), 'avg'))[0]!);
    gradNorms.push(norm);
  }
  const final = await fsdp.fullStateDict();
  fsdp.dispose();
  return { losses, gradNorms, final, profiles };
}
