export {
  defaultGroups,
  type FlatEntry,
  type FlatLayout,
  flatLayout,
  shardRange,
  sliceShard,
} from './fsdp/flat-layout.js';
export {
  type FsdpOptions,
  FsdpParameters,
  SHARDING_STRATEGIES,
  type ShardingStrategy,
  type TransferEvent,
} from './fsdp/fsdp.js';
export type { StepRecord } from './fsdp/profile.js';
export {
  loadShardedCheckpoint,
  SHARD_FORMAT,
  type ShardFileMeta,
  saveShardedCheckpoint,
  shardFileNames,
} from './fsdp/sharded-checkpoint.js';
