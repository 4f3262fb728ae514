// Entry points: initProcessGroup with explicit options, initFromEnv with the torchrun environment variables.
import { RendezvousError } from './errors.js';
import type { ProcessGroup } from './process-group.js';
import type { C10dProtocol } from './rendezvous/c10d-store.js';
import { agentNamespace } from './rendezvous/rendezvous-store.js';
import { initTcpProcessGroup } from './transports/tcp.js';
import { initThreadProcessGroup, threadRingFromWorkerData } from './transports/threads.js';

/** Default collective timeout: 600 s, llm-foundry's `dist_timeout`. */
export const DEFAULT_TIMEOUT_MS = 600_000;

export interface InitOptions {
  backend: 'tcp' | 'threads';
  /** Required for 'tcp'; for 'threads' it comes from the launcher. */
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
  /** Per-collective timeout in ms (default 600 000). */
  timeoutMs?: number;
  /** How long TCP rendezvous may take (ms); default: timeoutMs. */
  rendezvousTimeoutMs?: number;
  /** Elements per pipelined segment of a ring step (default 262 144). */
  segmentElements?: number;
  /** TCP: rendezvous through the c10d store already serving MASTER_ADDR:MASTER_PORT (torchrun's agent). */
  agentStore?: { namespace: string; protocol?: 'auto' | C10dProtocol };
}

export async function initProcessGroup(opts: InitOptions): Promise<ProcessGroup> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
  if (opts.backend === 'threads') {
    return initThreadProcessGroup({ timeoutMs, segmentElements: opts.segmentElements });
  }
  if (opts.backend !== 'tcp') {
    throw new RendezvousError(`unknown backend '${String(opts.backend)}' (use 'tcp' or 'threads')`);
  }
  if (opts.rank === undefined || opts.worldSize === undefined) {
    throw new RendezvousError("backend 'tcp' needs rank and worldSize");
  }
  return initTcpProcessGroup({
    rank: opts.rank,
    worldSize: opts.worldSize,
    masterAddr: opts.masterAddr ?? '127.0.0.1',
    masterPort: opts.masterPort ?? 29500,
    timeoutMs,
    rendezvousTimeoutMs: opts.rendezvousTimeoutMs,
    segmentElements: opts.segmentElements,
    ...(opts.agentStore ? { agentStore: opts.agentStore } : {}),
  });
}

/** What torchelastic (torchrun's agent) adds to the rank variables. */
export interface ElasticEnv {
  /** TORCHELASTIC_USE_AGENT_STORE=True: the agent serves a c10d store on MASTER_PORT; ranks must not bind it. */
  useAgentStore: boolean;
  /** TORCHELASTIC_RUN_ID (torchrun's --rdzv-id; 'none' when unset). */
  runId: string;
  /** TORCHELASTIC_RESTART_COUNT: how many times the agent has restarted the group (0 on the first attempt). */
  restartCount: number;
  /** TORCHELASTIC_MAX_RESTARTS (torchrun's --max-restarts). */
  maxRestarts: number;
  /** GROUP_RANK: this machine's index among the agents (torchrun's node rank). */
  groupRank: number;
  /** TORCHELASTIC_ERROR_FILE: where a failing rank writes why, for the agent's summary. */
  errorFile: string | undefined;
}

/** The torchrun variables (plus MPTJS_DIST_TIMEOUT in seconds), parsed and checked. */
export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number | undefined;
  /** Present when torchelastic launched this rank (TORCHELASTIC_RUN_ID or TORCHELASTIC_USE_AGENT_STORE set). */
  elastic?: ElasticEnv;
}

function intReader(env: NodeJS.ProcessEnv) {
  return (name: string, fallback?: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') {
      if (fallback !== undefined) return fallback;
      throw new RendezvousError(
        `${name} is not set (launch with launchLocal / mptjs-train --nproc, or set the torchrun variables RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)`,
      );
    }
    const v = Number(raw);
    if (!Number.isInteger(v)) throw new RendezvousError(`${name}=${JSON.stringify(raw)} is not an integer`);
    return v;
  };
}

/** torchelastic's variables, or undefined when this rank was not started by a torchrun agent. */
export function readElasticEnv(env: NodeJS.ProcessEnv = process.env): ElasticEnv | undefined {
  const useRaw = env['TORCHELASTIC_USE_AGENT_STORE'];
  if (useRaw === undefined && env['TORCHELASTIC_RUN_ID'] === undefined) return undefined;
  // torchrun writes Python's str(bool): 'True' / 'False'.
  if (useRaw !== undefined && !['True', 'False', 'true', 'false', '1', '0', ''].includes(useRaw)) {
    throw new RendezvousError(`TORCHELASTIC_USE_AGENT_STORE=${JSON.stringify(useRaw)} is not True or False`);
  }
  const int = intReader(env);
  const restartCount = int('TORCHELASTIC_RESTART_COUNT', 0);
  const maxRestarts = int('TORCHELASTIC_MAX_RESTARTS', 0);
  if (restartCount < 0) throw new RendezvousError(`TORCHELASTIC_RESTART_COUNT=${restartCount} is negative`);
  if (maxRestarts < 0) throw new RendezvousError(`TORCHELASTIC_MAX_RESTARTS=${maxRestarts} is negative`);
  return {
    useAgentStore: useRaw === 'True' || useRaw === 'true' || useRaw === '1',
    runId: env['TORCHELASTIC_RUN_ID'] || 'none',
    restartCount,
    maxRestarts,
    groupRank: int('GROUP_RANK', 0),
    errorFile: env['TORCHELASTIC_ERROR_FILE'] || undefined,
  };
}

export function readDistEnv(env: NodeJS.ProcessEnv = process.env): DistEnv {
  const int = intReader(env);
  const elastic = readElasticEnv(env);
  const dist: DistEnv = {
    rank: int('RANK'),
    worldSize: int('WORLD_SIZE'),
    localRank: int('LOCAL_RANK', 0),
    localWorldSize: int('LOCAL_WORLD_SIZE', 1),
    masterAddr: env['MASTER_ADDR'] || '127.0.0.1',
    masterPort: int('MASTER_PORT', 29500),
    timeoutMs: readTimeout(env),
    ...(elastic ? { elastic } : {}),
  };
  const localWorldSizeSet = env['LOCAL_WORLD_SIZE'] !== undefined && env['LOCAL_WORLD_SIZE'] !== '';
  if (dist.localRank < 0 || (localWorldSizeSet && dist.localRank >= dist.localWorldSize)) {
    throw new RendezvousError(
      `LOCAL_RANK=${dist.localRank} is out of range for LOCAL_WORLD_SIZE=${dist.localWorldSize} (expected 0..${dist.localWorldSize - 1})`,
    );
  }
  return dist;
}

/** MPTJS_C10D_PROTOCOL: skip the probe of torchrun's store when its torch version is known. */
function readC10dProtocol(env: NodeJS.ProcessEnv): 'auto' | C10dProtocol {
  const raw = env['MPTJS_C10D_PROTOCOL'];
  if (raw === undefined || raw === '') return 'auto';
  if (raw === 'auto' || raw === 'legacy' || raw === 'validated') return raw;
  throw new RendezvousError(
    `MPTJS_C10D_PROTOCOL=${JSON.stringify(raw)} is not auto, legacy (torch <= 2.2) or validated (torch >= 2.3)`,
  );
}

function readTimeout(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env['MPTJS_DIST_TIMEOUT'];
  if (raw === undefined || raw === '') return undefined;
  const s = Number(raw);
  if (!(s > 0)) throw new RendezvousError(`MPTJS_DIST_TIMEOUT=${raw} must be a positive number of seconds`);
  return s * 1000;
}

/**
 * Joins the group described by the environment: inside a worker thread started by launchLocal the ring ports
 * (backend 'threads'), otherwise TCP rendezvous at MASTER_ADDR:MASTER_PORT: through the c10d store torchrun's agent
 * serves there when TORCHELASTIC_USE_AGENT_STORE=True, else through the store rank 0 hosts.
 */
export function initFromEnv(overrides: Partial<InitOptions> = {}): Promise<ProcessGroup> {
  if (overrides.backend !== 'tcp' && threadRingFromWorkerData()) {
    return initProcessGroup({ timeoutMs: readTimeout(process.env), ...overrides, backend: 'threads' });
  }
  const env = readDistEnv();
  const elastic = env.elastic;
  return initProcessGroup({
    backend: 'tcp',
    rank: env.rank,
    worldSize: env.worldSize,
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    timeoutMs: env.timeoutMs,
    ...(elastic?.useAgentStore
      ? {
          agentStore: {
            namespace: agentNamespace(elastic.runId, elastic.restartCount),
            protocol: readC10dProtocol(process.env),
          },
        }
      : {}),
    ...overrides,
  });
}

/**
 * True inside a rank started by a launcher (RANK set, or the ring ports of a launchLocal worker thread): a CLI
 * uses it to decide between launching ranks and being one.
 */
export function isDistributedRank(env: NodeJS.ProcessEnv = process.env): boolean {
  return threadRingFromWorkerData() !== null || (env['RANK'] !== undefined && env['RANK'] !== '');
}
