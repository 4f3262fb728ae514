export {
  CollectiveMismatchError,
  CollectiveTimeoutError,
  PeerFailureError,
  ProcessGroupError,
  RendezvousError,
} from './errors.js';
export { DEFAULT_TIMEOUT_MS, type DistEnv, type InitOptions, initFromEnv, initProcessGroup, readDistEnv } from './init.js';
export type { CollectiveOptions, ProcessGroup, ReduceOp } from './process-group.js';
export { chunkRange } from './ring-algorithms.js';
export { canonicalJson } from './verify-same.js';
export { type TcpGroupOptions, initTcpProcessGroup } from './transports/tcp.js';
export { TcpStoreClient, TcpStoreServer } from './transports/tcp-store.js';
export {
  createLocalGroups,
  createThreadRing,
  ringTransferList,
  type ThreadGroupOptions,
  type ThreadRingPorts,
  threadGroupFromPorts,
} from './transports/threads.js';
export { freePort, type LaunchedJob, LaunchError, type LaunchOptions, launchLocal, type RankHandle } from './launch.js';
export {
  FsdpParameters,
  type FsdpOptions,
  type FsdpUnit,
  type ParamMap,
  SHARDING_STRATEGIES,
  type ShardingStrategy,
  type UnitPhase,
} from './fsdp/fsdp.js';
export { defaultGroups, type FlatEntry, type FlatLayout, flatLayout, shardRange, sliceShard } from './fsdp/flat-layout.js';
