/**
 * The device behind mptjs's webgpu backend. tfjs-backend-webgpu opens its device with `timestamp-query` only;
 * mptjs opens it itself, with the same limits, and also asks for `subgroups` and Dawn's experimental
 * `chromium-experimental-subgroup-matrix` (cooperative-matrix) feature and `shader-f16` where the adapter offers them, so its
 * kernels can use the GPU's matrix units. tfjs generates each shader's header itself, which would put a
 * program's `enable` directives after declarations (a WGSL error): the device's `createShaderModule` moves
 * them to the top.
 */
import * as tf from '@tensorflow/tfjs-core';

/** One subgroup-matrix shape and type the adapter supports (Dawn's `GPUSubgroupMatrixConfig`). */
export interface SubgroupMatrixConfig {
  componentType: string;
  resultComponentType: string;
  M: number;
  N: number;
  K: number;
}

/** What the device of the active webgpu backend can do beyond core WebGPU. */
export interface WebGpuCapabilities {
  features: string[];
  subgroupMinSize: number;
  subgroupMaxSize: number;
  /** Empty unless the device was opened with `chromium-experimental-subgroup-matrix`. */
  subgroupMatrixConfigs: SubgroupMatrixConfig[];
}

export const SUBGROUP_MATRIX_FEATURE = 'chromium-experimental-subgroup-matrix';
const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16', SUBGROUP_MATRIX_FEATURE];

interface AdapterLike {
  features: ReadonlySet<string>;
  limits: Record<string, number>;
  info?: Record<string, unknown>;
  requestDevice(descriptor: unknown): Promise<DeviceLike>;
}

interface DeviceLike {
  features: ReadonlySet<string>;
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
}

const capabilitiesByDevice = new WeakMap<object, WebGpuCapabilities>();

const ENABLE_DIRECTIVE = /^[ \t]*enable [a-z0-9_, ]+;[ \t]*$/gm;
const DIAGNOSTIC_DIRECTIVE = /^[ \t]*diagnostic\([a-z_]+, [a-z0-9_.]+\);[ \t]*$/gm;

/**
 * WGSL with every `enable` directive, then every global `diagnostic` directive, moved before the first
 * declaration (where WGSL requires them), duplicates dropped.
 */
export function hoistEnableDirectives(code: string): string {
  const enables = code.match(ENABLE_DIRECTIVE) ?? [];
  const diagnostics = code.match(DIAGNOSTIC_DIRECTIVE) ?? [];
  if (enables.length + diagnostics.length === 0) return code;
  const unique = [...new Set([...enables, ...diagnostics].map((d) => d.trim()))];
  return `${unique.join('\n')}\n${code.replace(ENABLE_DIRECTIVE, '').replace(DIAGNOSTIC_DIRECTIVE, '')}`;
}

function readConfigs(info: Record<string, unknown> | undefined): SubgroupMatrixConfig[] {
  const raw = info?.['subgroupMatrixConfigs'];
  if (!raw || typeof (raw as Iterable<unknown>)[Symbol.iterator] !== 'function') return [];
  return [...(raw as Iterable<Record<string, unknown>>)].map((c) => ({
    componentType: String(c['componentType']),
    resultComponentType: String(c['resultComponentType']),
    M: Number(c['M']),
    N: Number(c['N']),
    K: Number(c['K']),
  }));
}

/** Opens a device on `adapter` with tfjs's limits plus the optional features mptjs's kernels can use. */
export async function openWebGpuDevice(adapter: unknown): Promise<DeviceLike> {
  const a = adapter as AdapterLike;
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => a.features.has(f));
  const L = a.limits;
  const device = await a.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: L['maxComputeWorkgroupStorageSize'],
      maxComputeWorkgroupsPerDimension: L['maxComputeWorkgroupsPerDimension'],
      maxStorageBufferBindingSize: L['maxStorageBufferBindingSize'],
      maxBufferSize: L['maxBufferSize'],
      maxComputeWorkgroupSizeX: L['maxComputeWorkgroupSizeX'],
      maxComputeInvocationsPerWorkgroup: L['maxComputeInvocationsPerWorkgroup'],
    },
  });
  const create = device.createShaderModule.bind(device);
  device.createShaderModule = (descriptor) =>
    create({ ...descriptor, code: hoistEnableDirectives(descriptor.code) });
  const info = a.info ?? {};
  capabilitiesByDevice.set(device, {
    features: [...device.features].sort(),
    subgroupMinSize: Number(info['subgroupMinSize'] ?? 0),
    subgroupMaxSize: Number(info['subgroupMaxSize'] ?? 0),
    subgroupMatrixConfigs: device.features.has(SUBGROUP_MATRIX_FEATURE) ? readConfigs(info) : [],
  });
  return device;
}

/** Capabilities of the active webgpu backend's device (null on other backends or a device mptjs did not open). */
export function webGpuCapabilities(): WebGpuCapabilities | null {
  if (tf.getBackend() !== 'webgpu') return null;
  const device = (tf.backend() as unknown as { device?: object }).device;
  return device ? (capabilitiesByDevice.get(device) ?? null) : null;
}

interface ReleasableBackend {
  device?: { queue: { onSubmittedWorkDone(): Promise<unknown> }; destroy(): void };
  dispose(): void;
}

/**
 * Lets the GPU finish, frees the webgpu backend's buffers and destroys its device, so a process can end without
 * Dawn tearing a busy device down from its exit handlers (which sometimes crashed the process with a signal after
 * its work was done). Afterwards the backend cannot run anything. A no-op without a webgpu backend.
 */
export async function releaseWebGpuDevice(): Promise<void> {
  const backend = tf.findBackend('webgpu') as unknown as ReleasableBackend | undefined;
  const device = backend?.device;
  if (!backend || !device) return;
  await device.queue.onSubmittedWorkDone();
  backend.dispose();
  device.destroy();
}
