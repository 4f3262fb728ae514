export { BackendUnavailableError } from './errors.js';
export {
  BACKEND_NAMES,
  type BackendInfo,
  type BackendName,
  type BackendRequest,
  formatBackendInfo,
  parseBackendRequest,
  type SelectBackendOptions,
  selectBackend,
} from './select-backend.js';
export {
  applyTfjsFlags,
  formatTfjsFlags,
  parseTfjsFlags,
  TFJS_FLAGS_ENV,
  type TfjsFlags,
  TfjsFlagsError,
  type TfjsFlagValue,
  tfjsFlagType,
  WEBGPU_FLAG_DEFAULTS,
} from './tfjs-flags.js';
export {
  type AdapterDescription,
  dawnFeatureToggles,
  describeAdapter,
  requestWebGpuAdapter,
} from './webgpu-adapter.js';
export { adapterIndexFromEnv, WEBGPU_ADAPTER_INDEX_ENV } from './webgpu-adapter-index.js';
export { releaseWebGpuDevice } from './webgpu-device.js';
