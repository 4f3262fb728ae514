// Picking the WebGPU adapter of a rank by index: Dawn's adapter list (the message its Node binding gives when asked
// for an adapter it lacks), the name flag that selects one, and the refusals. On a machine with a Vulkan driver
// (SwiftShader's in CI) the real Dawn lists its adapters and hands the single one to every index.
import { webgpuExpected } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { describeAdapter, requestWebGpuAdapter } from './webgpu-adapter.js';
import { adapterIndexFromEnv, dawnAdapterFlag, parseDawnAdapterList } from './webgpu-adapter-index.js';

describe('WebGPU adapter index', () => {
  it("reads Dawn's adapter list", () => {
    const message =
      "no suitable backends found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA H200'\n" +
      " * backend: 'vulkan', name: 'SwiftShader Device (Subzero)'";
    expect(parseDawnAdapterList(message)).toEqual(['NVIDIA H200', 'SwiftShader Device (Subzero)']);
    expect(parseDawnAdapterList('no suitable backends found')).toEqual([]);
  });

  it('selects by a name no earlier adapter shares, shares a lone adapter, refuses the rest', () => {
    expect(dawnAdapterFlag(['NVIDIA A10', 'AMD Radeon Pro'], 1)).toBe('adapter=AMD Radeon Pro');
    expect(dawnAdapterFlag(['NVIDIA A10', 'AMD Radeon Pro'], 0)).toBe('adapter=NVIDIA A10');
    expect(dawnAdapterFlag(['NVIDIA H200'], 1)).toBeNull();
    expect(dawnAdapterFlag([], 3)).toBeNull();
    expect(() => dawnAdapterFlag(['A', 'B'], 2)).toThrow(
      'WebGPU adapter index 2 is out of range: this machine has 2 adapters (0: A; 1: B)',
    );
    expect(() => dawnAdapterFlag(['NVIDIA H200', 'NVIDIA H200'], 1)).toThrow(
      /^WebGPU adapter index 1 cannot be selected: Dawn picks adapters by name and adapter 0 is also "NVIDIA H200" \(0: NVIDIA H200; 1: NVIDIA H200\)\. .* --gpu-index 0 /,
    );
  });

  it('reads MPTJS_WEBGPU_ADAPTER_INDEX', () => {
    expect(adapterIndexFromEnv({})).toBeUndefined();
    expect(adapterIndexFromEnv({ MPTJS_WEBGPU_ADAPTER_INDEX: '3' })).toBe(3);
    expect(() => adapterIndexFromEnv({ MPTJS_WEBGPU_ADAPTER_INDEX: '-1' })).toThrow(
      'MPTJS_WEBGPU_ADAPTER_INDEX="-1" is not an adapter index (0, 1, ...)',
    );
  });

  it.runIf(webgpuExpected)("Dawn gives a machine's only adapter to index 1 too", async () => {
    const adapter = describeAdapter(await requestWebGpuAdapter(1));
    expect(adapter.summary).not.toBe('unknown adapter');
  });
});
