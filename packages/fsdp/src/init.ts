// Entry points: initProcessGroup with explicit options, initFromEnv with the torchrun environment variables.
import { RendezvousError } from './errors.js';
import type { ProcessGroup } from './process-group.js';
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
  });
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
}

export function readDistEnv(env: NodeJS.ProcessEnv = process.env): DistEnv {
  const int = (name: string, fallback?: number): number => {
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
  return {
    rank: int('RANK'),
    worldSize: int('WORLD_SIZE'),
    localRank: int('LOCAL_RANK', 0),
    localWorldSize: int('LOCAL_WORLD_SIZE', 1),
    masterAddr: env['MASTER_ADDR'] || '127.0.0.1',
    masterPort: int('MASTER_PORT', 29500),
    timeoutMs: readTimeout(env),
  };
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
 * (backend 'threads'), otherwise TCP rendezvous at MASTER_ADDR:MASTER_PORT.
 */
export function initFromEnv(overrides: Partial<InitOptions> = {}): Promise<ProcessGroup> {
  if (overrides.backend !== 'tcp' && threadRingFromWorkerData()) {
    return initProcessGroup({ timeoutMs: readTimeout(process.env), ...overrides, backend: 'threads' });
  }
  const env = readDistEnv();
  return initProcessGroup({
    backend: 'tcp',
    rank: env.rank,
    worldSize: env.worldSize,
    masterAddr: env.masterAddr,
    masterPort: env.masterPort,
    timeoutMs: env.timeoutMs,
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
