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
export { type AdapterDescription, describeAdapter, requestWebGpuAdapter } from './webgpu-adapter.js';
