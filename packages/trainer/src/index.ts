export * from './checkpoint/index.js';
export * from './config/index.js';
export { BatchStream } from './data/batch-stream.js';
export { type LoaderEntry, loaders, openMixer } from './data/loaders.js';
export {
  elasticRestart,
  envRank,
  joinDistributedFromEnv,
  launchLocalRanks,
  recordRankFailure,
} from './distributed.js';
export * from './driver/index.js';
export * from './export/index.js';
export * from './metrics/index.js';
export * from './optim/index.js';
export * from './precision/index.js';
export { checkpointFolder } from './run/build-run.js';
export { DEFAULT_EVAL_BATCHES } from './run/callbacks/eval.js';
export type { TrainOptions, TrainResult } from './run/run-options.js';
export * from './schedule/index.js';
export { train } from './trainer.js';
