export { type WaitAsync, waitAsync } from './atomics-wait.js';
export {
  CollectiveMismatchError,
  CollectiveTimeoutError,
  PeerFailureError,
  ProcessGroupError,
  RendezvousError,
  seconds,
} from './errors.js';
export {
  DEFAULT_TIMEOUT_MS,
  type DistEnv,
  type ElasticEnv,
  type InitOptions,
  initFromEnv,
  initProcessGroup,
  isDistributedRank,
  readDistEnv,
  readElasticEnv,
} from './init.js';
export {
  freePort,
  LaunchError,
  type LaunchedJob,
  type LaunchOptions,
  launchLocal,
  type RankHandle,
} from './launch.js';
export type { CollectiveOptions, ProcessGroup, ReduceOp } from './process-group.js';
export {
  ERROR_FILE_ENV,
  type RankFailure,
  readRankFailure,
  recordRankFailure,
  TORCHELASTIC_ERROR_FILE_ENV,
  type TorchelasticErrorFile,
  torchelasticErrorFile,
} from './rank-failure.js';
export {
  type C10dProtocol,
  C10dStore,
  C10dStoreError,
  type C10dStoreErrorKind,
  type C10dStoreOptions,
  DEFAULT_PROBE_MS,
  detectC10dProtocol,
} from './rendezvous/c10d-store.js';
export {
  type AgentStoreOptions,
  agentNamespace,
  agentStore,
  type RendezvousStore,
} from './rendezvous/rendezvous-store.js';
export { chunkRange } from './ring-algorithms.js';
export type { SharedArena } from './shared-arena.js';
export { createSharedRing, SharedMemoryLink, type SharedRing } from './transports/shared-memory-link.js';
export { initTcpProcessGroup, type TcpGroupOptions } from './transports/tcp.js';
export { TcpStoreClient, TcpStoreServer } from './transports/tcp-store.js';
export {
  createLocalGroups,
  createThreadRing,
  ringTransferList,
  THREAD_TRANSPORTS,
  type ThreadGroupOptions,
  type ThreadRingOptions,
  type ThreadRingPorts,
  type ThreadTransport,
  threadGroupFromPorts,
} from './transports/threads.js';
export { canonicalJson } from './verify-same.js';
