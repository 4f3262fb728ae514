/**
 * How many threads our wasm kernels may use. tfjs-wasm's Node build runs on one thread, so a kernel that is
 * compute bound on one core (the int8 matrix-vector product) splits its work over worker threads of its own.
 * Default: min(available cores, 4); `MPTJS_WASM_THREADS` or `setWasmThreads` overrides it; 1 keeps every kernel
 * on the calling thread. Threads need Node's `worker_threads` and SharedArrayBuffer; elsewhere (a browser) the
 * count is 1, with no error.
 */

/** Environment variable that sets the thread count (an integer from 1 to `WASM_THREADS_MAX`). */
export const WASM_THREADS_ENV = 'MPTJS_WASM_THREADS';
/** Most threads (the calling one included) a kernel splits over. */
export const WASM_THREADS_MAX = 16;
const DEFAULT_MAX = 4;

export type WorkerThreadsModule = typeof import('node:worker_threads');

let chosen: number | undefined;
const listeners = new Set<() => void>();

function parseThreads(value: unknown, source: string): number {
  const n = typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > WASM_THREADS_MAX) {
    throw new RangeError(
      `${source} must be an integer from 1 to ${WASM_THREADS_MAX}, got ${JSON.stringify(value) ?? String(value)}`,
    );
  }
  return n;
}

// Looked up once: `wasmThreads()` runs on every matrix-vector product of a decode step, and asking the OS for
// its cores each time cost about 5% of a small model's step.
let workerThreadsModule: WorkerThreadsModule | null | undefined;
let cores: number | undefined;

function builtin<T>(id: string): T | undefined {
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return typeof get === 'function' ? (get(id) as T | undefined) : undefined;
}

/** Node's `worker_threads`, loaded without a static import so that browser bundles never see it; else null. */
export function workerThreads(): WorkerThreadsModule | null {
  if (typeof process === 'undefined' || typeof SharedArrayBuffer === 'undefined') return null;
  if (workerThreadsModule === undefined) {
    workerThreadsModule = builtin<WorkerThreadsModule>('node:worker_threads') ?? null;
  }
  return workerThreadsModule;
}

function availableCores(): number {
  cores ??= builtin<typeof import('node:os')>('node:os')?.availableParallelism() ?? 1;
  return cores;
}

/**
 * Threads the wasm kernels use: 1 where worker threads or SharedArrayBuffer are missing, else the value set by
 * `setWasmThreads`, else `MPTJS_WASM_THREADS`, else min(available cores, 4). A malformed variable throws.
 */
export function wasmThreads(): number {
  if (!workerThreads()) return 1;
  if (chosen !== undefined) return chosen;
  const env = process.env[WASM_THREADS_ENV];
  if (env !== undefined && env !== '') return parseThreads(env, WASM_THREADS_ENV);
  return Math.max(1, Math.min(availableCores(), DEFAULT_MAX));
}

/**
 * Sets the thread count (1 to `WASM_THREADS_MAX`), or `'auto'` to go back to the variable or the default.
 * Running thread pools are shut down so that the next call starts one of the new size.
 */
export function setWasmThreads(threads: number | 'auto'): void {
  const next = threads === 'auto' ? undefined : parseThreads(threads, 'setWasmThreads');
  if (next === chosen) return;
  chosen = next;
  for (const listener of listeners) listener();
}

/** Calls `listener` whenever the thread count is set (to shut down a pool of the old size). */
export function onWasmThreadsChange(listener: () => void): void {
  listeners.add(listener);
}
