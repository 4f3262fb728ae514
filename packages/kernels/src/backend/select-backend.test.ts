import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { formatBackendInfo, parseBackendRequest, selectBackend } from './select-backend.js';
import { describeAdapter } from './webgpu-adapter.js';

function matmulOn(): Float32Array {
  const a = tf.tensor2d([1.5, -2, 0.25, 3, 4, -1, 0.5, 2, -0.75, 1, 2.5, -3], [3, 4]);
  const b = tf.tensor2d([0.5, 1, -1, 2, 3, -0.5, 1, 1, 0.25, -2, 1.5, 0.75], [4, 3]);
  const out = tf.matMul(a, b);
  const data = out.dataSync() as Float32Array;
  tf.dispose([a, b, out]);
  return data;
}

describe('selectBackend', () => {
  it('activates the cpu and wasm backends on request and computes the same matmul', async () => {
    const lines: string[] = [];
    const cpu = await selectBackend('cpu', { log: (l) => lines.push(l) });
    expect(cpu.name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const ref = matmulOn();
    const wasm = await selectBackend('wasm', { log: (l) => lines.push(l) });
    expect(wasm.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(Array.from(matmulOn())).toEqual(Array.from(ref));
    expect(lines).toEqual(['[mptjs] backend=cpu (requested)', '[mptjs] backend=wasm (requested)']);
  });

  it('rejects unknown backend names with the list of valid ones', () => {
    expect(() => parseBackendRequest('cuda')).toThrow(
      'unknown backend "cuda": expected one of auto, webgpu, wasm, cpu',
    );
    expect(parseBackendRequest(undefined)).toBe('auto');
    expect(parseBackendRequest('WebGPU')).toBe('webgpu');
  });

  it('classifies software adapters so auto never prefers them over wasm', () => {
    const swiftshader = describeAdapter({
      info: { vendor: 'google', architecture: 'swiftshader' },
      features: [],
    });
    expect(swiftshader.isSoftware).toBe(true);
    const nvidia = describeAdapter({
      info: { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100' },
    });
    expect(nvidia.isSoftware).toBe(false);
    expect(formatBackendInfo({ name: 'webgpu', adapter: nvidia, reason: 'requested' })).toBe(
      '[mptjs] backend=webgpu adapter="nvidia / hopper / NVIDIA H100" (requested)',
    );
  });

  it.runIf(webgpuExpected)('runs a matmul on the real webgpu backend (Dawn) and matches cpu', async () => {
    await selectBackend('cpu', { log: false });
    const ref = matmulOn();
    const info = await selectBackend('webgpu', { log: false });
    expect(info.name).toBe('webgpu');
    expect(tf.getBackend()).toBe('webgpu');
    expect(info.adapter?.summary.length).toBeGreaterThan(0);
    const a = tf.tensor2d([1.5, -2, 0.25, 3, 4, -1, 0.5, 2, -0.75, 1, 2.5, -3], [3, 4]);
    const b = tf.tensor2d([0.5, 1, -1, 2, 3, -0.5, 1, 1, 0.25, -2, 1.5, 0.75], [4, 3]);
    const out = tf.matMul(a, b);
    const got = (await out.data()) as Float32Array;
    for (let i = 0; i < ref.length; i++) expect(got[i]).toBeCloseTo(ref[i]!, 5);
    tf.dispose([a, b, out]);
    await selectBackend('auto', { log: false }).then((auto) => {
      // On an emulated adapter auto must fall back to wasm; on a real GPU it keeps webgpu.
      expect(auto.name).toBe(info.adapter?.isSoftware ? 'wasm' : 'webgpu');
    });
  });

  it('fails clearly when webgpu is requested without an adapter', async () => {
    if (webgpuExpected) return;
    await expect(selectBackend('webgpu', { log: false })).rejects.toThrow(/WebGPU|webgpu/);
  });
});
