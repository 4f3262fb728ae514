// Releasing the webgpu device before a process ends: the queue drains, the backend's buffers are freed and the
// device is destroyed (Dawn then has nothing busy to tear down at exit). In its own file: the backend is unusable
// afterwards.
import { webgpuExpected } from '@mptjs/test-fixtures';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../index.js';
import { releaseWebGpuDevice } from './webgpu-device.js';

describe('releaseWebGpuDevice', () => {
  it('does nothing without a webgpu backend', async () => {
    await selectBackend('cpu', { log: false });
    if (!tf.findBackend('webgpu')) await expect(releaseWebGpuDevice()).resolves.toBeUndefined();
  });

  if (!webgpuExpected) {
    it.skip('skipped: no WebGPU adapter expected (set VK_ICD_FILENAMES for SwiftShader)', () => {});
  }

  it.runIf(webgpuExpected)('drains the queue and destroys the device after work is queued', async () => {
    await selectBackend('webgpu', { log: false });
    const device = (tf.backend() as unknown as { device: { lost: Promise<{ reason: string }> } }).device;
    const x = tf.randomNormal([256, 256]);
    const y = tf.matMul(x, x);
    const sum = tf.sum(y);
    const value = (await sum.data())[0];
    expect(Number.isFinite(value)).toBe(true);
    tf.matMul(y, y); // queued, not read: the release must wait for it
    await releaseWebGpuDevice();
    await expect(device.lost).resolves.toMatchObject({ reason: 'destroyed' });
  });
});
