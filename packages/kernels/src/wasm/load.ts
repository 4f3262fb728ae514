/**
 * Instantiates our WebAssembly SIMD kernels against the memory of a tfjs-wasm backend, so they read and write
 * tensors in place (a tensor's bytes sit at its `memoryOffset` in that memory). One instance per memory object
 * and module; null where the runtime lacks SIMD or the memory cannot be imported, and callers then fall back
 * to tfjs's own kernels. Modules come from a table that tools/build/build-wasm-kernels.mjs generates: this
 * package's by default; another package (the attention kernels) passes its own.
 */
import { WASM_KERNELS } from '../wasm-kernels.generated.js';

/** What this package needs of tfjs-backend-wasm's `BackendWasm` (its fields are public but untyped here). */
export interface WasmBackendLike {
  wasm: { asm?: { memory?: WebAssembly.Memory }; wasmMemory?: WebAssembly.Memory };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined; has(dataId: object): boolean };
  makeOutput(shape: number[], dtype: 'float32'): { dataId: object; shape: number[]; dtype: string };
  disposeData(dataId: object): void;
}

/** The exports of `matmul.wat`; every pointer is a byte address in the backend's memory. */
export interface MatmulExports {
  matmul(
    a: number,
    b: number,
    c: number,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: number,
    strideA: number,
    strideB: number,
  ): void;
  transpose(src: number, dst: number, batch: number, rows: number, cols: number): void;
  swap_blocks(src: number, dst: number, batch: number, rows: number, cols: number, block: number): void;
  add_into(dst: number, src: number, n: number): void;
  copy(dst: number, src: number, bytes: number): void;
}

/** A generated module table: keys `<module>:<plain|shared>`, values the module bytes as base64. */
export type WasmModuleTable = Readonly<Record<string, string>>;

// Keyed by table first, so two packages' modules never share a cache entry even if their names met.
const instances = new WeakMap<
  WasmModuleTable,
  WeakMap<WebAssembly.Memory, Map<string, WebAssembly.Exports | null>>
>();
const compiled = new WeakMap<WasmModuleTable, Map<string, WebAssembly.Module | null>>();

function decodeBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Compiles a module variant once per process; null when the engine rejects it (no SIMD). */
function compile(table: WasmModuleTable, key: string): WebAssembly.Module | null {
  let byKey = compiled.get(table);
  if (!byKey) {
    byKey = new Map();
    compiled.set(table, byKey);
  }
  if (byKey.has(key)) return byKey.get(key)!;
  const text = table[key];
  if (text === undefined) throw new Error(`no generated wasm kernel module "${key}"`);
  const bytes = decodeBase64(text);
  // validate() is the feature test: an engine without SIMD (or shared memory) rejects the module.
  const module =
    typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null;
  byKey.set(key, module);
  return module;
}

/**
 * The compiled module `name` of `table` importing a plain or a shared memory (null where the engine rejects
 * it), for instantiating on a memory of our own, such as the one the int8 thread pool shares with its workers.
 */
export function compiledKernelModule(
  name: string,
  variant: 'plain' | 'shared',
  table: WasmModuleTable = WASM_KERNELS,
): WebAssembly.Module | null {
  return compile(table, `${name}:${variant}`);
}

/** The backend's WebAssembly.Memory, or null when this tfjs-wasm build does not expose it. */
export function backendMemory(backend: WasmBackendLike): WebAssembly.Memory | null {
  const memory = backend.wasm?.asm?.memory ?? backend.wasm?.wasmMemory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

/** The named kernel module of `table` bound to `backend`'s memory, or null where it cannot run. */
export function kernelsFor<T>(
  backend: WasmBackendLike,
  name: string,
  table: WasmModuleTable = WASM_KERNELS,
): T | null {
  const memory = backendMemory(backend);
  if (!memory) return null;
  let byMemory = instances.get(table);
  if (!byMemory) {
    byMemory = new WeakMap();
    instances.set(table, byMemory);
  }
  let byName = byMemory.get(memory);
  if (!byName) {
    byName = new Map();
    byMemory.set(memory, byName);
  }
  if (byName.has(name)) return byName.get(name) as T | null;
  const shared = typeof SharedArrayBuffer !== 'undefined' && memory.buffer instanceof SharedArrayBuffer;
  const module = compile(table, `${name}:${shared ? 'shared' : 'plain'}`);
  let exports: WebAssembly.Exports | null = null;
  if (module) {
    try {
      exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    } catch {
      exports = null; // a memory this module cannot import (LinkError): keep tfjs's kernels
    }
  }
  byName.set(name, exports);
  return exports as T | null;
}

/** Byte address of a tensor's data in the backend's memory. */
export function addressOf(backend: WasmBackendLike, dataId: object): number {
  const data = backend.dataIdMap.get(dataId);
  if (!data) throw new Error('tensor data is not on the wasm backend');
  return data.memoryOffset;
}
