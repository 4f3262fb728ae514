import { BackendUnavailableError } from './errors.js';
import {
  adapterIndexFromEnv,
  DAWN_LIST_ADAPTERS_FLAG,
  dawnAdapterFlag,
  parseDawnAdapterList,
} from './webgpu-adapter-index.js';

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** True for CPU emulations (SwiftShader, llvmpipe/lavapipe, WARP) and adapters marked as fallback. */
  isSoftware: boolean;
  features: string[];
  summary: string;
  /** Where the device has int8 subgroup matrices: whether mptjs's int8 matmul uses them, and why. */
  int8MatrixUnits?: string;
}

interface GpuLike {
  requestAdapter(options?: { powerPreference?: string }): Promise<unknown>;
}

const SOFTWARE_HINTS = /swiftshader|llvmpipe|lavapipe|software|microsoft basic render|warp/i;

/**
 * Dawn's instance toggles. Dawn hides `shader-f16` on NVIDIA's Vulkan driver (a blocklist kept for conformance
 * failures) unless `vulkan_enable_f16_on_nvidia` is on; it changes nothing on other adapters, and every f16 kernel
 * checks itself against f32 before use (`settleF16Gemm`). `MPTJS_WEBGPU_F16=0` leaves the block in place.
 */
export function dawnFeatureToggles(env: NodeJS.ProcessEnv = process.env): string[] {
  const toggles = ['allow_unsafe_apis'];
  if (env['MPTJS_WEBGPU_F16'] !== '0') toggles.push('vulkan_enable_f16_on_nvidia');
  return toggles;
}

async function nodeGpu(index?: number): Promise<GpuLike> {
  let mod: { create: (flags: string[]) => GpuLike; globals: Record<string, unknown> };
  try {
    // A non-literal specifier keeps bundlers from pulling Dawn's native addon into browser builds.
    const specifier = ['web', 'gpu'].join('');
    mod = (await import(/* @vite-ignore */ specifier)) as typeof mod;
  } catch (err) {
    throw new BackendUnavailableError(
      `the "webgpu" npm package (Dawn) could not be loaded: ${(err as Error).message}`,
    );
  }
  // tfjs-backend-webgpu reads GPUBufferUsage and friends from the global scope.
  for (const [key, value] of Object.entries(mod.globals)) {
    if (!(key in globalThis)) (globalThis as Record<string, unknown>)[key] = value;
  }
  // Unsafe APIs let Dawn list its experimental features (subgroup matrices); only those asked for are enabled.
  const flags = [`enable-dawn-features=${dawnFeatureToggles().join(',')}`];
  const gpu = mod.create([...flags, ...(index ? await adapterFlags(mod.create, flags, index) : [])]);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (!g.navigator) {
    Object.defineProperty(globalThis, 'navigator', { value: {}, writable: true, configurable: true });
  }
  if (!g.navigator!.gpu) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, writable: true, configurable: true });
  }
  return g.navigator!.gpu as GpuLike;
}

/** Dawn's `adapter=` flag for adapter `index`, from the adapters Dawn lists when asked for one it lacks. */
async function adapterFlags(
  create: (flags: string[]) => GpuLike,
  flags: string[],
  index: number,
): Promise<string[]> {
  const listed = await create([...flags, DAWN_LIST_ADAPTERS_FLAG])
    .requestAdapter({ powerPreference: 'high-performance' })
    .then(
      () => '',
      (err: unknown) => String((err as Error)?.message ?? err),
    );
  const flag = dawnAdapterFlag(parseDawnAdapterList(listed), index);
  return flag ? [flag] : [];
}

let cachedAdapter: Promise<unknown> | undefined;

/**
 * Finds a WebGPU adapter: `navigator.gpu` in browsers (and Node >= 21 if present), Dawn via `webgpu` in Node. `index`
 * (default: `MPTJS_WEBGPU_ADAPTER_INDEX`) picks one of several GPUs under Dawn (see webgpu-adapter-index.ts); a
 * machine with one adapter gives it to every index.
 */
export function requestWebGpuAdapter(index = adapterIndexFromEnv()): Promise<unknown> {
  cachedAdapter ??= (async () => {
    const existing = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
    const gpu = existing ?? (await nodeGpu(index));
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) {
      throw new BackendUnavailableError(
        'WebGPU is present but offered no adapter (no GPU driver; on Linux without a GPU set VK_ICD_FILENAMES to a Vulkan ICD such as SwiftShader)',
      );
    }
    return adapter;
  })();
  cachedAdapter.catch(() => {
    cachedAdapter = undefined;
  });
  return cachedAdapter;
}

export function describeAdapter(adapter: unknown): AdapterDescription {
  const a = adapter as {
    info?: Record<string, unknown>;
    features?: Iterable<string>;
    isFallbackAdapter?: boolean;
  };
  const info = a.info ?? {};
  const str = (k: string) => (typeof info[k] === 'string' ? (info[k] as string) : '');
  const vendor = str('vendor');
  const architecture = str('architecture');
  const device = str('device');
  const description = str('description');
  const text = [vendor, architecture, device, description].join(' ');
  const isSoftware = Boolean(a.isFallbackAdapter || info['isFallbackAdapter']) || SOFTWARE_HINTS.test(text);
  const summary =
    [vendor, architecture, device, description].filter(Boolean).join(' / ') || 'unknown adapter';
  return {
    vendor,
    architecture,
    device,
    description,
    isSoftware,
    features: a.features ? [...a.features].sort() : [],
    summary: isSoftware ? `${summary} (software)` : summary,
  };
}
