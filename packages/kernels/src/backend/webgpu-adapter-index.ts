// Choosing one of several GPUs by index, for one rank per GPU (torchrun's LOCAL_RANK, mptjs-train --gpu-index).
// WebGPU has no adapter enumeration, and Dawn's Node binding (the `webgpu` package) picks the first adapter whose
// device name contains its `adapter=` flag. What it does offer: with a name nothing matches, requestAdapter rejects
// listing every adapter in enumeration order. So an index maps to a name, and the name selects the adapter,
// exactly when no earlier adapter's name contains it; identical GPUs (8 of one model) cannot be told apart.
import { BackendUnavailableError } from './errors.js';

/** Set per rank by mptjs-train (from --gpu-index, else LOCAL_RANK): which adapter this process should use. */
export const WEBGPU_ADAPTER_INDEX_ENV = 'MPTJS_WEBGPU_ADAPTER_INDEX';

/** A device name no adapter has, to make Dawn list the ones it found. */
export const DAWN_LIST_ADAPTERS_FLAG = 'adapter=mptjs-list-adapters\u0001';

export function adapterIndexFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env[WEBGPU_ADAPTER_INDEX_ENV];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new BackendUnavailableError(
      `${WEBGPU_ADAPTER_INDEX_ENV}=${JSON.stringify(raw)} is not an adapter index (0, 1, ...)`,
    );
  }
  return n;
}

/** The adapter names in Dawn's "Available adapters:" list (its message when the `adapter=` flag matches none). */
export function parseDawnAdapterList(message: string): string[] {
  const names: string[] = [];
  for (const m of message.matchAll(/^ \* backend: '[^']*', name: '(.*)'$/gm)) names.push(m[1]!);
  return names;
}

/**
 * The `adapter=` flag that makes Dawn pick adapter `index` of `names`, or null when there is a single adapter (every
 * rank of the machine shares it). Throws when the index is out of range or an earlier adapter's name would match.
 */
export function dawnAdapterFlag(names: readonly string[], index: number): string | null {
  if (names.length <= 1) return null;
  const list = names.map((n, i) => `${i}: ${n}`).join('; ');
  if (index >= names.length) {
    throw new BackendUnavailableError(
      `WebGPU adapter index ${index} is out of range: this machine has ${names.length} adapters (${list})`,
    );
  }
  const name = names[index]!;
  const first = names.findIndex((n) => n.includes(name));
  if (first !== index) {
    throw new BackendUnavailableError(
      `WebGPU adapter index ${index} cannot be selected: Dawn picks adapters by name and adapter ${first} is also ` +
        `"${name}" (${list}). Give each rank its own GPU at launch (one GPU per container or cgroup), or pass ` +
        '--gpu-index 0 to let the ranks share the first adapter',
    );
  }
  return `adapter=${name}`;
}
