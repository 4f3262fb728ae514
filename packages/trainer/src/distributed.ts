import { initFromEnv, launchLocal, type ProcessGroup, readDistEnv, readElasticEnv } from '@mptjs/distributed';

// A rank's CLI records why it failed, so the launcher names the rank that caused a job's failure.
export { recordRankFailure } from '@mptjs/distributed';

/**
 * Joins the job described by the torchrun environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK),
 * or returns undefined when WORLD_SIZE is unset: a plain single-process run. `distTimeoutS` is the config's
 * `dist_timeout`, the per-collective limit.
 */
export async function joinDistributedFromEnv(distTimeoutS: number): Promise<ProcessGroup | undefined> {
  if (process.env['WORLD_SIZE'] === undefined) return undefined;
  readDistEnv(); // validates the variables, naming the bad one
  return initFromEnv({ timeoutMs: distTimeoutS * 1000 });
}

/**
 * When torchrun restarted this rank's group after a failure (`--max-restarts` > 0, TORCHELASTIC_RESTART_COUNT > 0),
 * the attempt it is (1 = first restart) and the limit: the run must continue from its latest checkpoint, as
 * `--autoresume` would, rather than start over. Undefined otherwise, including torchrun's first attempt.
 */
export function elasticRestart(
  env: NodeJS.ProcessEnv = process.env,
): { restartCount: number; maxRestarts: number } | undefined {
  const elastic = readElasticEnv(env);
  if (!elastic || elastic.maxRestarts === 0 || elastic.restartCount === 0) return undefined;
  return { restartCount: elastic.restartCount, maxRestarts: elastic.maxRestarts };
}

/** This process's rank from the environment (0 when not launched as part of a job). */
export function envRank(): number {
  const r = Number(process.env['RANK'] ?? '0');
  return Number.isInteger(r) ? r : 0;
}

/** Where this launcher's ranks sit in a multi-node job (torchrun's --nnodes/--node-rank/--master-*). */
export interface NodePlacement {
  /**
   * 'process' (default): child processes over TCP. 'thread': worker threads of this process over shared memory
   * (one node only; each thread loads its own tfjs backend).
   */
  localRanks?: 'process' | 'thread';
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  masterPort?: number;
}

/**
 * Runs `script args` as `nproc` local ranks (child processes wired over TCP, or worker threads over shared memory;
 * torchrun variables set), streaming
 * their output; resolves when all exit cleanly and rejects naming the first rank that fails. With `nnodes > 1`
 * every node runs one launcher with its `nodeRank`, all meeting at `masterAddr:masterPort` (node 0's store).
 */
export async function launchLocalRanks(
  script: string,
  args: string[],
  nproc: number,
  distTimeoutS?: number,
  placement: NodePlacement = {},
): Promise<void> {
  if (!Number.isInteger(nproc) || nproc < 1)
    throw new Error(`--nproc must be a positive integer, got ${nproc}`);
  const { localRanks, ...where } = placement;
  const job = await launchLocal({
    script,
    args,
    nproc,
    mode: localRanks === 'thread' ? 'threads' : 'processes',
    stdio: 'inherit',
    ...(distTimeoutS ? { distTimeoutS } : {}),
    ...Object.fromEntries(Object.entries(where).filter(([, v]) => v !== undefined)),
  });
  await job.done;
}
