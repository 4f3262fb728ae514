import { selectBackend } from '@mptjs/kernels';
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { forwardBackwardChain, forwardChain } from './drivers.js';
import { LocalParameters } from './local-parameters.js';
import type { ChainUnit, ParamMap, UnitHooks } from './unit.js';

interface Ctx {
  targets: tf.Tensor;
}

// A small chain with the MPT shape: an embedding (int input), two residual tanh blocks, a tied head with a loss.
function chain(): ChainUnit<Ctx>[] {
  const embed: ChainUnit<Ctx> = {
    name: 'embed',
    paramNames: ['wte'],
    inputIsDifferentiable: false,
    forward: (p, ids) => tf.matMul(tf.oneHot(tf.cast(ids, 'int32'), 7), p.get('wte')!),
  };
  const block = (i: number): ChainUnit<Ctx> => ({
    name: `block${i}`,
    paramNames: [`w${i}`, `g${i}`],
    inputIsDifferentiable: true,
    forward: (p, x) => tf.add(x, tf.mul(tf.tanh(tf.matMul(x, p.get(`w${i}`)!)), p.get(`g${i}`)!)),
  });
  const head: ChainUnit<Ctx> = {
    name: 'head',
    paramNames: ['wte'],
    inputIsDifferentiable: true,
    forward: (p, x, ctx) =>
      tf.losses.softmaxCrossEntropy(
        tf.oneHot(tf.cast(ctx.targets, 'int32'), 7),
        tf.matMul(x, p.get('wte')!, false, true),
      ),
  };
  return [embed, block(0), block(1), head];
}

function params(): Map<string, tf.Variable> {
  const r = (shape: number[], seed: number) => tf.variable(tf.randomNormal(shape, 0, 0.5, 'float32', seed));
  return new Map([
    ['wte', r([7, 5], 1)],
    ['w0', r([5, 5], 2)],
    ['g0', r([5], 3)],
    ['w1', r([5, 5], 4)],
    ['g1', r([5], 5)],
  ]);
}

// Real WebGPU (Dawn) runs where the environment provides an adapter (SwiftShader here: kept tiny).
const backends = webgpuExpected ? (['cpu', 'wasm', 'webgpu'] as const) : (['cpu', 'wasm'] as const);

describe.each(backends)('unit chain driver on %s', (backend) => {
  it('matches whole-model gradients, sums tied-weight gradients, and leaks no tensors', async () => {
    await selectBackend(backend, { log: false });
    const vars = params();
    const ids = tf.tensor1d([0, 3, 6, 2], 'int32');
    const ctx = { targets: tf.tensor1d([3, 6, 2, 1], 'int32') };
    const units = chain();

    const whole = tf.variableGrads(() => {
      let x: tf.Tensor = ids;
      for (const u of units) x = u.forward(vars, x, ctx);
      return x as tf.Scalar;
    }, [...vars.values()]);
    const expectedLoss = (await whole.value.data())[0]!;

    const local = new LocalParameters(vars);
    const before = tf.memory().numTensors;
    const loss = await forwardBackwardChain(units, ids, ctx, local);
    const grads = local.takeGradients();
    expect(tf.memory().numTensors - before).toBe(grads.size);
    expect(loss).toBeCloseTo(expectedLoss, 5);
    for (const [name, v] of vars) {
      const want = await whole.grads[v.name]!.data();
      const got = await grads.get(name)!.data();
      for (let i = 0; i < want.length; i++) expect(got[i]!).toBeCloseTo(want[i]!, 5);
    }
    // Loss scale multiplies gradients; two accumulated halves equal one whole.
    await forwardBackwardChain(units, ids, ctx, local, 0.5);
    await forwardBackwardChain(units, ids, ctx, local, 0.5);
    const accumulated = local.takeGradients();
    const a = await accumulated.get('w1')!.data();
    const b = await grads.get('w1')!.data();
    for (let i = 0; i < a.length; i++) expect(a[i]!).toBeCloseTo(b[i]!, 6);

    const out = await forwardChain(units, ids, ctx, local);
    expect((await out.data())[0]).toBeCloseTo(expectedLoss, 5);
    tf.dispose([
      out,
      ids,
      ctx.targets,
      ...grads.values(),
      ...accumulated.values(),
      whole.value,
      ...Object.values(whole.grads),
      ...vars.values(),
    ]);
  });

  it("calls hooks in unit order forward and reverse order backward, with each unit's gradient names", async () => {
    await selectBackend(backend, { log: false });
    const vars = params();
    const calls: string[] = [];
    const hooks: UnitHooks<Ctx> = {
      beforeUnitForward: (u, phase) => {
        calls.push(`${phase}:${u.name}`);
        return vars as ParamMap;
      },
      afterUnitBackward: (u, g) => {
        calls.push(`grads:${u.name}:${[...g.keys()].join(',')}`);
        tf.dispose([...g.values()]);
      },
    };
    const ids = tf.tensor1d([1, 2], 'int32');
    const ctx = { targets: tf.tensor1d([2, 3], 'int32') };
    await forwardBackwardChain(chain(), ids, ctx, hooks);
    expect(calls).toEqual([
      'forward:embed',
      'forward:block0',
      'forward:block1',
      'recompute:head',
      'grads:head:wte',
      'recompute:block1',
      'grads:block1:w1,g1',
      'recompute:block0',
      'grads:block0:w0,g0',
      'recompute:embed',
      'grads:embed:wte',
    ]);
    expect(() => new LocalParameters(new Map()).beforeUnitForward(chain()[0]!)).toThrow(
      'unit "embed" needs parameter "wte", which the model lacks',
    );
    tf.dispose([ids, ctx.targets, ...vars.values()]);
  });
});
