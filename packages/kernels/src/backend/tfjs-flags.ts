import * as tf from '@tensorflow/tfjs-core';

export type TfjsFlagValue = number | boolean | string;
export type TfjsFlags = Record<string, TfjsFlagValue>;
type FlagType = 'number' | 'boolean' | 'string';

/** The environment variable that overrides tfjs flags: `NAME=value,NAME=value`. */
export const TFJS_FLAGS_ENV = 'MPTJS_TFJS_FLAGS';

export class TfjsFlagsError extends Error {
  override name = 'TfjsFlagsError';
}

/**
 * The flags of @tensorflow/tfjs-backend-webgpu 4.22 (flags_webgpu.js) and their types. They are registered only
 * when the backend is imported, which happens after an adapter is found, so parsing cannot ask tfjs about them.
 */
const WEBGPU_FLAG_TYPES: Readonly<Record<string, FlagType>> = {
  WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 'number',
  WEBGPU_CPU_FORWARD: 'boolean',
  WEBGPU_MATMUL_PROGRAM_TYPE: 'number',
  WEBGPU_USE_NAIVE_CONV2D_TRANSPOSE: 'boolean',
  WEBGPU_USE_LOW_POWER_GPU: 'boolean',
  WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD: 'number',
  WEBGPU_USE_PROFILE_TOOL: 'boolean',
  WEBGPU_IMPORT_EXTERNAL_TEXTURE: 'boolean',
  WEBGPU_USE_NAIVE_CONV2D_DEBUG: 'boolean',
  WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL: 'number',
  WEBGPU_CONV_SEPARATE_IM2COL_SHADER: 'boolean',
  WEBGPU_PRINT_SHADER: 'string',
  WEBGPU_ENGINE_COMPILE_ONLY: 'boolean',
};

/** Value ranges the webgpu backend's code relies on; tfjs itself does not check them. */
const WEBGPU_FLAG_RANGES: Readonly<Record<string, { min: number; max?: number; what: string }>> = {
  // Submitted when the dispatch count reaches it: 0 or less would submit after every dispatch anyway.
  WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: { min: 1, what: 'a whole number of dispatches >= 1' },
  // MatMulProgramType: -1 automatic, 0 reduce, 1 split-K, 2 small output size, 3 packed.
  WEBGPU_MATMUL_PROGRAM_TYPE: { min: -1, max: 3, what: 'a whole number from -1 (automatic) to 3' },
  WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD: { min: 0, what: 'a whole number of elements >= 0' },
  // -1 (or 0) leaves the backend's own adapter-based threshold in place.
  WEBGPU_THRESHOLD_TO_INCREASE_WORKGROUPS_FOR_MATMUL: {
    min: -1,
    what: 'a whole number of workgroups >= 1, or -1 for the backend default',
  },
};

/**
 * mptjs's defaults on the webgpu backend, applied unless `MPTJS_TFJS_FLAGS` names the flag. Each differs from
 * tfjs's own default for a reason in the backend's source (backend_webgpu.js):
 *
 * - `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` 30 (tfjs: 15): tfjs records dispatches into one command encoder and
 *   submits it every N dispatches (and before every readback). In Node, Dawn submits in-process straight to the
 *   Vulkan queue; a decode step is a few hundred small dispatches, recording-bound, and pays one submit (encoder
 *   finish, queue submit, returning buffers to the pool) per N. A training step is GPU-bound: once the first batch
 *   is queued the GPU runs ahead while the CPU records the rest, so a larger N only delays the first batch by a
 *   few dispatches. It stays moderate because the buffers of tensors disposed during a batch only return to the
 *   pool at its submit.
 */
export const WEBGPU_FLAG_DEFAULTS: Readonly<TfjsFlags> = Object.freeze({
  WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 30,
});

/** The type of a flag tfjs knows (webgpu's from the table above, the others from tfjs's registry), or null. */
export function tfjsFlagType(name: string): FlagType | null {
  const webgpu = WEBGPU_FLAG_TYPES[name];
  if (webgpu) return webgpu;
  if (name.startsWith('WEBGPU_')) return null;
  let value: unknown;
  try {
    value = tf.env().get(name);
  } catch {
    // tfjs throws for a flag nothing registered.
    return null;
  }
  const type = typeof value;
  return type === 'number' || type === 'boolean' || type === 'string' ? type : null;
}

function parseValue(name: string, raw: string, type: FlagType): TfjsFlagValue {
  const prefix = `${TFJS_FLAGS_ENV}: ${name}`;
  if (type === 'boolean') {
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    throw new TfjsFlagsError(`${prefix} expects true or false, got "${raw}"`);
  }
  if (type === 'string') return raw;
  const value = /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw new TfjsFlagsError(`${prefix} expects a number, got "${raw}"`);
  const range = WEBGPU_FLAG_RANGES[name];
  if (
    range &&
    (!Number.isInteger(value) || value < range.min || (range.max !== undefined && value > range.max))
  ) {
    throw new TfjsFlagsError(`${prefix} expects ${range.what}, got "${raw}"`);
  }
  return value;
}

/**
 * Parses `NAME=value,NAME=value` strictly: every name must be a tfjs flag, every value of its type (numbers,
 * `true`/`false`, or any text without a comma), and no name may appear twice. An empty or missing spec is {}.
 */
export function parseTfjsFlags(spec: string | undefined): TfjsFlags {
  const flags: TfjsFlags = {};
  if (spec === undefined || spec.trim() === '') return flags;
  for (const item of spec.split(',')) {
    const entry = item.trim();
    const eq = entry.indexOf('=');
    if (eq <= 0) {
      throw new TfjsFlagsError(
        `${TFJS_FLAGS_ENV}: expected NAME=value, got "${entry}" (entries are separated by commas)`,
      );
    }
    const name = entry.slice(0, eq).trim();
    const raw = entry.slice(eq + 1).trim();
    const type = tfjsFlagType(name);
    if (!type) {
      throw new TfjsFlagsError(
        `${TFJS_FLAGS_ENV}: unknown tfjs flag "${name}" (webgpu flags: ${Object.keys(WEBGPU_FLAG_TYPES).join(', ')})`,
      );
    }
    if (name in flags) throw new TfjsFlagsError(`${TFJS_FLAGS_ENV}: ${name} is given twice`);
    flags[name] = parseValue(name, raw, type);
  }
  return flags;
}

/**
 * Sets each flag in tfjs's environment. A webgpu flag whose backend is not imported yet is not registered, so
 * its value is stored directly: tfjs reads a stored value before evaluating a flag, which also lets the flags the
 * backend reads once at import (WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD) see it.
 */
export function applyTfjsFlags(flags: TfjsFlags): void {
  const env = tf.env();
  for (const [name, value] of Object.entries(flags)) {
    try {
      env.set(name, value);
    } catch (err) {
      if (!(name in WEBGPU_FLAG_TYPES)) throw err;
      env.getFlags()[name] = value;
    }
  }
}

export function formatTfjsFlags(flags: TfjsFlags): string {
  return Object.entries(flags)
    .map(([name, value]) => `${name}=${value}`)
    .join(',');
}
