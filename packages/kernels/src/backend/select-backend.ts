import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { settleInt8MatrixPlan } from '../ops/int8-linear/webgpu.js';
import { BackendUnavailableError } from './errors.js';
import {
  applyTfjsFlags,
  formatTfjsFlags,
  parseTfjsFlags,
  TFJS_FLAGS_ENV,
  type TfjsFlags,
  WEBGPU_FLAG_DEFAULTS,
} from './tfjs-flags.js';
import { type AdapterDescription, describeAdapter, requestWebGpuAdapter } from './webgpu-adapter.js';
import { openWebGpuDevice, SUBGROUP_MATRIX_FEATURE } from './webgpu-device.js';

export type BackendName = 'webgpu' | 'wasm' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['webgpu', 'wasm', 'cpu'];

export interface BackendInfo {
  name: BackendName;
  /** Only for `webgpu`: what the adapter says of itself. */
  adapter?: AdapterDescription;
  /** Why `auto` chose this backend, or that it was requested. */
  reason: string;
  /** The tfjs flags mptjs set: its webgpu defaults and the `MPTJS_TFJS_FLAGS` overrides. */
  flags?: TfjsFlags;
}

export interface SelectBackendOptions {
  /** Print the chosen backend and adapter (default: true) through `log`. */
  log?: ((line: string) => void) | false;
  /** tfjs flag overrides as `NAME=value,...` (default: the `MPTJS_TFJS_FLAGS` environment variable). */
  tfjsFlags?: string;
}

export function parseBackendRequest(value: string | undefined): BackendRequest {
  const v = (value ?? 'auto').trim().toLowerCase();
  if (v === 'auto' || (BACKEND_NAMES as readonly string[]).includes(v)) return v as BackendRequest;
  throw new BackendUnavailableError(
    `unknown backend "${value}": expected one of auto, ${BACKEND_NAMES.join(', ')}`,
  );
}

let webgpuRegistered = false;

async function activateWebGpu(): Promise<AdapterDescription> {
  const adapter = await requestWebGpuAdapter();
  if (!webgpuRegistered) {
    // Registering the backend only once a real adapter exists keeps tfjs from probing a missing navigator.gpu.
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    // tfjs registers its own factory on import; ours opens the device with the features our kernels use.
    if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
    tf.registerBackend(
      'webgpu',
      async () => {
        const device = await openWebGpuDevice(adapter);
        const info = (adapter as { info?: unknown }).info;
        type Args = ConstructorParameters<typeof WebGPUBackend>;
        return new WebGPUBackend(device as unknown as Args[0], info as Args[1]);
      },
      3,
    );
    webgpuRegistered = true;
  }
  if (!(await tf.setBackend('webgpu'))) {
    throw new BackendUnavailableError('the webgpu backend failed to initialize on the adapter it was given');
  }
  await tf.ready();
  const description = describeAdapter(adapter);
  if (description.features.includes(SUBGROUP_MATRIX_FEATURE)) {
    const { plan, reason } = await settleInt8MatrixPlan();
    description.int8MatrixUnits = plan ? `yes: ${reason}` : `no: ${reason}`;
  }
  return description;
}

async function activate(name: Exclude<BackendName, 'webgpu'>): Promise<void> {
  let ok = false;
  try {
    ok = await tf.setBackend(name);
  } catch (err) {
    throw new BackendUnavailableError(`the ${name} backend failed to initialize: ${(err as Error).message}`);
  }
  if (!ok) throw new BackendUnavailableError(`the ${name} backend failed to initialize`);
  await tf.ready();
}

/**
 * Selects and initializes a tfjs backend. `auto` prefers a hardware WebGPU adapter, then wasm, then cpu: an
 * emulated adapter (SwiftShader, llvmpipe) is far slower than wasm, so it is only used when asked for by name.
 */
export async function selectBackend(
  request: BackendRequest = 'auto',
  options: SelectBackendOptions = {},
): Promise<BackendInfo> {
  const log = options.log === false ? () => {} : (options.log ?? ((line: string) => console.error(line)));
  // Parsed and set before any backend starts: a bad flag fails first, and the webgpu flags the backend reads
  // when it is imported see the overrides.
  const overrides = parseTfjsFlags(options.tfjsFlags ?? envFlags());
  applyTfjsFlags(overrides);
  let info: BackendInfo;
  if (request === 'webgpu') {
    info = { name: 'webgpu', adapter: await activateWebGpu(), reason: 'requested' };
  } else if (request === 'wasm' || request === 'cpu') {
    await activate(request);
    info = { name: request, reason: 'requested' };
  } else {
    info = await selectBest();
  }
  let flags = overrides;
  if (info.name === 'webgpu') {
    const defaults = Object.fromEntries(
      Object.entries(WEBGPU_FLAG_DEFAULTS).filter(([name]) => !(name in overrides)),
    );
    applyTfjsFlags(defaults);
    flags = { ...defaults, ...overrides };
  }
  if (Object.keys(flags).length > 0) info.flags = flags;
  log(formatBackendInfo(info));
  return info;
}

function envFlags(): string | undefined {
  return typeof process === 'undefined' ? undefined : process.env[TFJS_FLAGS_ENV];
}

async function selectBest(): Promise<BackendInfo> {
  let skipped = '';
  try {
    const adapter = describeAdapter(await requestWebGpuAdapter());
    if (!adapter.isSoftware) {
      return { name: 'webgpu', adapter: await activateWebGpu(), reason: 'auto: hardware WebGPU adapter' };
    }
    skipped = `webgpu adapter "${adapter.summary}" is software-emulated`;
  } catch (err) {
    skipped = `webgpu unavailable (${(err as Error).message})`;
  }
  try {
    await activate('wasm');
    return { name: 'wasm', reason: `auto: ${skipped}; using wasm` };
  } catch (err) {
    await activate('cpu');
    return { name: 'cpu', reason: `auto: ${skipped}; wasm unavailable (${(err as Error).message})` };
  }
}

export function formatBackendInfo(info: BackendInfo): string {
  const adapter = info.adapter ? ` adapter=${JSON.stringify(info.adapter.summary)}` : '';
  const units = info.adapter?.int8MatrixUnits
    ? ` int8-matrix-units=${JSON.stringify(info.adapter.int8MatrixUnits)}`
    : '';
  const flags =
    info.flags && Object.keys(info.flags).length > 0 ? ` flags=${formatTfjsFlags(info.flags)}` : '';
  return `[mptjs] backend=${info.name}${adapter}${units}${flags} (${info.reason})`;
}
