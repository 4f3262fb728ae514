// Test fixtures shared by the workspace's tests and benchmarks. Nothing here imports an @mptjs package, so any
// package can take this one as a devDependency without a cycle.
export { maxAbsDiff, relativeL2 } from './compare.js';
export { webgpuExpected } from './environment.js';
export { type HubServer, type RequestLog, type ServedRepo, startHubServer } from './hub-server.js';
export { type ByteMutation, mutateBytes } from './mutate-bytes.js';
export { randomFloats, seededRandom } from './random.js';
export { repoPath, repoRoot } from './repo.js';
export { FIXTURES_DIR, modelFixtureNames } from './repo-fixtures.js';
export { sharedDir, sharedFile, TINY_MOSAIC_DIR, TOKENIZER_JSON } from './shared-files.js';
export { randomTensor } from './tensors.js';
export {
  TINY_VOCAB_SIZE,
  type TinyRunOptions,
  writeJsonlStream,
  writeTinyRun,
  writeTinyTokenizer,
} from './tiny-run.js';
export {
  PYTHON,
  startTorchStore,
  TORCHRUN_SCRIPT,
  type TorchStore,
  torchAvailable,
  torchStoreTestsRun,
} from './torch-store.js';
export { withWebGpuPrograms } from './webgpu-programs.js';
