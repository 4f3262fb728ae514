export * from './checkpoint/index.js';
export * from './config/index.js';
export { BatchStream, openMixer } from './data.js';
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
export * from './schedule/index.js';
export {
  checkpointFolder,
  DEFAULT_EVAL_BATCHES,
  type TrainOptions,
  type TrainResult,
  train,
} from './trainer.js';
