export {
  type CheckpointSource,
  type LoadedCheckpoint,
  loadCheckpoint,
  readConfig,
  type SavedCheckpoint,
  type SaveOptions,
  saveCheckpoint,
  stateDictProblems,
  validateStateDict,
} from './checkpoint.js';
export {
  bf16ToF32,
  type Dtype,
  decodeFloats,
  encodeFloats,
  type FloatDtype,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  type IntDtype,
  widen16InPlace,
} from './dtypes.js';
export { CheckpointError, HubError, UnsafePickleError } from './errors.js';
export {
  defaultModelFiles,
  hubCacheDir,
  parseModelSpec,
  type ResolveModelOptions,
  repoCacheDir,
  resolveModel,
} from './hub.js';
export { isBufferName, toMosaicGptName, toMptName } from './names.js';
export { type PyGlobal, type UnpickleOptions, unpickle } from './pickle.js';
export { type ProgressSink, progressBar } from './progress.js';
export {
  readSafetensors,
  readSafetensorsHeader,
  type SafeTensor,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type TensorData,
  type TensorToWrite,
  type WriteSafetensorsOptions,
  writeSafetensors,
} from './safetensors.js';
export {
  readTorchStateDict,
  TORCH_GLOBALS,
  TorchCheckpoint,
  type TorchDtype,
  type TorchTensorRef,
} from './torch-bin.js';
export {
  openWeights,
  readShardIndex,
  type TensorListing,
  type WeightFiles,
  type WeightFormat,
} from './weights.js';
