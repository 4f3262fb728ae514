/**
 * tfjs-wasm's Identity copies its input into a new buffer, where the cpu and webgpu backends share it (one more
 * reference on the same data). tfjs runs Identity for every `clone`, and the gradient tape clones each tensor a
 * kernel saves for its backward pass: on wasm that is a copy of most activations of a training step. This
 * replacement shares the data as Reshape already does on wasm; no wasm kernel writes into its inputs, so a
 * shared buffer is never changed under a clone. Strings go to tfjs's kernel unchanged.
 */
import * as tf from '@tensorflow/tfjs-core';

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
type KernelFunc = (args: KernelArgs) => tf.TensorInfo;

interface RefCountedBackend {
  incRef(dataId: tf.DataId): void;
}

let patched = false;

/** Installs the sharing Identity on the wasm backend (idempotent). False when wasm is not registered. */
export function patchWasmIdentity(): boolean {
  if (patched) return true;
  const identity = tf.getKernel('Identity', 'wasm');
  if (!identity) return false;
  const tfjsIdentity = identity.kernelFunc as unknown as KernelFunc;
  const kernelFunc = (args: KernelArgs): tf.TensorInfo => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    if (x.dtype === 'string') return tfjsIdentity(args);
    (args.backend as RefCountedBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
  };
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ ...identity, kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  patched = true;
  return true;
}
