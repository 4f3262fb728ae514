// The drivers that run a unit chain: forward only, and forward-backward a unit at a time.
import * as tf from '@tensorflow/tfjs-core';
import type { ChainUnit, UnitHooks } from './unit.js';

function checkUnits<C>(units: readonly ChainUnit<C>[]): void {
  if (units.length === 0) throw new Error('the model chain has no units');
  for (const u of units) {
    if (new Set(u.paramNames).size !== u.paramNames.length)
      throw new Error(`unit "${u.name}" lists a parameter twice`);
  }
}

/** Runs the chain forward without keeping anything for backward; returns the last unit's output. */
export async function forwardChain<C>(
  units: readonly ChainUnit<C>[],
  input: tf.Tensor,
  ctx: C,
  hooks: UnitHooks<C>,
): Promise<tf.Tensor> {
  checkUnits(units);
  let x = input;
  for (const unit of units) {
    const params = await hooks.beforeUnitForward(unit, 'eval');
    const y = tf.tidy(() => unit.forward(params, x, ctx));
    await hooks.afterUnitForward?.(unit, 'eval', params);
    if (x !== input) x.dispose();
    x = y;
  }
  return x;
}

/**
 * One forward and backward pass, a unit at a time. Forward keeps only each unit's input; backward re-runs each
 * unit from that input and takes its vector-Jacobian product, handing the parameter gradients to
 * `afterUnitBackward` and passing the input gradient to the unit before. Peak activation memory is one unit's
 * intermediates plus the unit boundaries (activation checkpointing). The last unit (the loss) runs once, under
 * the gradient tape, in phase `recompute`: its forward would only be thrown away and recomputed (for an LM head
 * that is a vocab-sized matmul). The loss gradient is seeded with `lossScale` (gradient accumulation scales each
 * microbatch by its share of the batch). Returns the loss.
 */
export async function forwardBackwardChain<C>(
  units: readonly ChainUnit<C>[],
  input: tf.Tensor,
  ctx: C,
  hooks: UnitHooks<C>,
  lossScale = 1,
): Promise<number> {
  checkUnits(units);
  const inputs: tf.Tensor[] = [];
  let x = input;
  for (const unit of units.slice(0, -1)) {
    inputs.push(x);
    const params = await hooks.beforeUnitForward(unit, 'forward');
    const y = tf.tidy(() => unit.forward(params, x, ctx));
    await hooks.afterUnitForward?.(unit, 'forward', params);
    x = y;
  }
  inputs.push(x);

  // The loss is read without waiting: on a GPU the read completes once the loss unit's backward has run, and
  // waiting for it would leave the GPU idle until the next unit's kernels were queued.
  let lossRead: Promise<number> | undefined;
  let dy: tf.Tensor = tf.scalar(lossScale);
  for (let i = units.length - 1; i >= 0; i--) {
    const unit = units[i]!;
    const unitInput = inputs[i]!;
    const last = i === units.length - 1;
    const params = await hooks.beforeUnitForward(unit, 'recompute');
    const names = unit.paramNames;
    const withInput = unit.inputIsDifferentiable;
    const { value, grads } = tf.tidy(() => {
      const f = (...xs: tf.Tensor[]) => {
        const p = new Map(names.map((n, k) => [n, xs[k + (withInput ? 1 : 0)]!] as const));
        const out = unit.forward(p, withInput ? xs[0]! : unitInput, ctx);
        if (last && out.size !== 1) {
          throw new Error(`the last unit must return a scalar loss, got shape [${out.shape}]`);
        }
        return out;
      };
      const xs = [...(withInput ? [unitInput] : []), ...names.map((n) => params.get(n)!)];
      return tf.valueAndGrads(f)(xs, dy);
    });
    if (last) {
      lossRead = value.data().then((d) => d[0]!);
      lossRead.then(
        () => value.dispose(),
        () => value.dispose(),
      );
    } else value.dispose();
    await hooks.afterUnitForward?.(unit, 'recompute', params);
    dy.dispose();
    if (unitInput !== input) unitInput.dispose();
    const offset = withInput ? 1 : 0;
    dy = withInput ? grads[0]! : tf.scalar(0);
    const paramGrads = new Map(names.map((n, k) => [n, grads[k + offset]!] as const));
    await hooks.afterUnitBackward(unit, paramGrads);
  }
  dy.dispose();
  return lossRead ?? Number.NaN;
}
