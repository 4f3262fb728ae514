// What the WebGPU adapter (and the device tfjs opened on it) says of itself, plus a nominal fp32 peak for known
// GPUs so MFU can be quoted against the datasheet as well as against this run's measured matmul rate.
import { requestWebGpuAdapter } from '@mptjs/kernels';
import * as tf from '@tensorflow/tfjs-core';

// Limits worth reading for these workloads; Dawn exposes them as prototype getters, so they are read by name.
const LIMIT_NAMES = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxUniformBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxBindGroups',
  'maxBindingsPerBindGroup',
  'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment',
  'maxSubgroupSize',
  'minSubgroupSize',
];

// fp32 (non-tensor-core) datasheet peaks in TFLOP/s; the first pattern that matches the adapter text wins.
const NOMINAL_FP32 = [
  [/H200/i, 67, 'NVIDIA H200 SXM datasheet, FP32 (non-tensor) 67 TFLOP/s'],
  [/H100.*PCIe/i, 51, 'NVIDIA H100 PCIe datasheet, FP32 (non-tensor) 51 TFLOP/s'],
  [/H100.*NVL/i, 60, 'NVIDIA H100 NVL datasheet, FP32 (non-tensor) 60 TFLOP/s'],
  [/H100/i, 67, 'NVIDIA H100 SXM datasheet, FP32 (non-tensor) 67 TFLOP/s'],
  [/A100/i, 19.5, 'NVIDIA A100 datasheet, FP32 (non-tensor) 19.5 TFLOP/s'],
  [/L40S/i, 91.6, 'NVIDIA L40S datasheet, FP32 91.6 TFLOP/s'],
  [/\bL4\b/i, 30.3, 'NVIDIA L4 datasheet, FP32 30.3 TFLOP/s'],
  [/\bA10\b/i, 31.2, 'NVIDIA A10 datasheet, FP32 31.2 TFLOP/s'],
];

export function readLimits(limits) {
  const out = {};
  if (!limits) return out;
  for (const name of LIMIT_NAMES) {
    const v = limits[name];
    if (typeof v === 'number' || typeof v === 'bigint') out[name] = Number(v);
  }
  for (const name in limits) {
    const v = limits[name];
    if (!(name in out) && (typeof v === 'number' || typeof v === 'bigint')) out[name] = Number(v);
  }
  return out;
}

export function nominalPeak(text) {
  for (const [pattern, tflops, source] of NOMINAL_FP32) {
    if (pattern.test(text)) return { tflops, source };
  }
  return null;
}

/** The adapter tfjs runs on (call after the webgpu backend is selected) as a JSON-ready object. */
export async function describeGpu(info) {
  const adapter = await requestWebGpuAdapter();
  const a = info.adapter;
  const features = a.features;
  const text = [a.vendor, a.architecture, a.device, a.description].join(' ');
  const device = tf.backend().device;
  return {
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device,
    description: a.description,
    summary: a.summary,
    is_software: a.isSoftware,
    features,
    shader_f16: features.includes('shader-f16'),
    subgroups: features.includes('subgroups'),
    timestamp_query: features.includes('timestamp-query'),
    limits: readLimits(adapter.limits),
    device_limits: readLimits(device?.limits),
    device_features: device?.features ? [...device.features].sort() : [],
    nominal_fp32_peak: nominalPeak(text),
  };
}
