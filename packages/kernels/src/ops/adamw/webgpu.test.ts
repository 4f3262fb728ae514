// The three-dispatch AdamW update on the real webgpu backend (Dawn) against the tfjs-op update on cpu: the
// parameter and both moments over several steps, with weight decay and a gradient of another shape, and the
// moments written in place (same tensors, nothing leaked).
import { relativeL2, webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { normal, on, withShaderChecks } from '../../testing/webgpu.js';
import type { AdamWStep } from './wasm.js';
import { adamwUpdateWebGpu, adamwWebGpuAvailable } from './webgpu.js';

const B1 = 0.9;
const B2 = 0.95;
const EPS = 1e-8;

function stepAt(t: number, lr: number, decay: number): AdamWStep {
  return {
    beta1: B1,
    beta2: B2,
    sqrtBc2: Math.sqrt(1 - B2 ** t),
    eps: EPS,
    stepSize: lr / (1 - B1 ** t),
    decay,
  };
}

interface State {
  p: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

/** Three steps of the update on the active backend; `fused` picks the webgpu kernel, else tfjs ops. */
async function threeSteps(shape: number[], fused: boolean, gradScale = 1): Promise<State> {
  const size = shape.reduce((a, b) => a * b, 1);
  // As optimizer slots are made: inside tidy, so each variable owns its data alone.
  const [p, m, v] = tf.tidy(() => [
    tf.variable(tf.tensor(normal(size, 1), shape), false),
    tf.variable(tf.zeros(shape), false),
    tf.variable(tf.zeros(shape), false),
  ]) as [tf.Variable, tf.Variable, tf.Variable];
  const mBefore = m.dataId;
  for (let t = 1; t <= 3; t++) {
    const s = stepAt(t, 1e-2, t === 2 ? 0.999 : 1);
    // The gradient as a flat tensor: the update reads it by element, whatever its shape.
    const g = tf.tensor1d(normal(size, 10 + t));
    if (fused) {
      const p1 = adamwUpdateWebGpu(p, g, m, v, s, gradScale);
      p.assign(p1);
      p1.dispose();
    } else {
      tf.tidy(() => {
        const gs = tf.reshape(gradScale === 1 ? g : tf.mul(g, gradScale), shape);
        const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(gs, 1 - s.beta1));
        const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(gs), 1 - s.beta2));
        const denom = tf.add(tf.div(tf.sqrt(v1), s.sqrtBc2), s.eps);
        p.assign(tf.sub(tf.mul(p, s.decay), tf.mul(tf.div(m1, denom), s.stepSize)));
        m.assign(m1);
        v.assign(v1);
      });
    }
    g.dispose();
  }
  if (fused) expect(m.dataId).toBe(mBefore);
  const out = {
    p: (await p.data()) as Float32Array,
    m: (await m.data()) as Float32Array,
    v: (await v.data()) as Float32Array,
  };
  tf.dispose([p, m, v]);
  return out;
}

describe('adamwUpdateWebGpu', () => {
  if (!webgpuExpected) {
    it.skip('skipped: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader)', () => {});
  }

  it.runIf(webgpuExpected)('matches the tfjs-op update over three steps, moments in place', async () => {
    for (const shape of [[7], [33, 65]]) {
      const want = await on('cpu', () => threeSteps(shape, false));
      const got = await on('webgpu', async () => {
        expect(adamwWebGpuAvailable()).toBe(true);
        const before = tf.memory().numTensors;
        const state = await withShaderChecks(() => threeSteps(shape, true));
        expect(tf.memory().numTensors).toBe(before);
        return state;
      });
      expect(relativeL2(got.m, want.m)).toBeLessThan(1e-6);
      expect(relativeL2(got.v, want.v)).toBeLessThan(1e-6);
      expect(relativeL2(got.p, want.p)).toBeLessThan(1e-6);
    }
  });

  // A loss scale of 2^12 undone and a clip factor, applied as the moments read the gradient: the same update as
  // multiplying every gradient first.
  it.runIf(webgpuExpected)(
    'applies a gradient scale (unscaling and clipping) as the moments read it',
    async () => {
      const scale = 0.37 / 4096;
      const want = await on('cpu', () => threeSteps([33, 65], false, scale));
      const got = await on('webgpu', () => withShaderChecks(() => threeSteps([33, 65], true, scale)));
      expect(relativeL2(got.m, want.m)).toBeLessThan(1e-6);
      expect(relativeL2(got.v, want.v)).toBeLessThan(1e-6);
      expect(relativeL2(got.p, want.p)).toBeLessThan(1e-6);
      // And not the unscaled update.
      const unscaled = await on('cpu', () => threeSteps([33, 65], false));
      expect(relativeL2(got.m, unscaled.m)).toBeGreaterThan(0.5);
    },
  );

  it.runIf(webgpuExpected)('rejects mismatched sizes and dtypes with the name of the tensor', async () => {
    await on('webgpu', async () => {
      const p = tf.zeros([4]);
      const bad = tf.zeros([5]);
      const ints = tf.zeros([4], 'int32');
      const s = stepAt(1, 1e-3, 1);
      expect(() => adamwUpdateWebGpu(p, bad, p.clone(), p.clone(), s)).toThrow(
        'adamw: grad must be float32 with 4 elements, got float32 [5]',
      );
      expect(() => adamwUpdateWebGpu(p, p, ints, p, s)).toThrow('adamw: m must be float32 with 4 elements');
      tf.dispose([p, bad, ints]);
    });
  });

  it('says it cannot run off webgpu', async () => {
    await on('cpu', async () => {
      expect(adamwWebGpuAvailable()).toBe(false);
      const p = tf.zeros([2]);
      expect(() => adamwUpdateWebGpu(p, p, tf.zeros([2]), tf.zeros([2]), stepAt(1, 1e-3, 1))).toThrow(
        'adamwUpdateWebGpu needs the webgpu backend',
      );
      p.dispose();
    });
  });
});
