// Starts the local ranks of a job (like torchrun): child processes or worker threads, each with RANK,
// WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set. The first rank to fail stops the
// others, and the job fails with an error naming the rank that caused it (see rank-failure.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ERROR_FILE_ENV, type RankFailure, readRankFailure } from './rank-failure.js';
import { createThreadRing, ringTransferList, type ThreadTransport } from './transports/threads.js';

export interface LaunchOptions {
  /** The script every rank runs (a .js/.mjs file; it calls initFromEnv()). */
  script: string;
  args?: string[];
  /** Ranks on this node. */
  nproc: number;
  /**
   * 'processes' (default): one node process per rank, TCP between them. 'threads': worker threads in this
   * process, joined by shared memory (single node only).
   */
  mode?: 'processes' | 'threads';
  /** How thread ranks exchange data (mode 'threads'): 'shared-memory' (default) or 'message-port'. */
  threadTransport?: ThreadTransport;
  nnodes?: number;
  nodeRank?: number;
  masterAddr?: string;
  /** Default: a free port when nnodes is 1, else 29500. */
  masterPort?: number;
  /** Extra environment for every rank. */
  env?: Record<string, string>;
  /** Collective timeout for the ranks (MPTJS_DIST_TIMEOUT, seconds). */
  distTimeoutS?: number;
  /** 'inherit' (default) or 'pipe' (read each rank's output from its handle). */
  stdio?: 'inherit' | 'pipe';
  /** Extra workerData for thread ranks (next to the ring ports). */
  workerData?: Record<string, unknown>;
  /** How long stopped ranks get between SIGTERM and SIGKILL (ms, default 3000). */
  killGraceMs?: number;
  /**
   * After the first failure, how long the other ranks get to fail on their own (their collectives reject naming
   * the failed rank) before they are stopped (ms, default 2000).
   */
  exitGraceMs?: number;
}

export interface RankHandle {
  readonly rank: number;
  readonly localRank: number;
  readonly process?: ChildProcess;
  readonly worker?: Worker;
  /** Output so far when stdio is 'pipe'. */
  readonly output: () => string;
  kill(signal?: NodeJS.Signals): void;
}

export interface LaunchedJob {
  readonly ranks: RankHandle[];
  readonly worldSize: number;
  readonly masterPort: number;
  /** Resolves when every local rank exits cleanly; rejects with a LaunchError for the first that does not. */
  readonly done: Promise<void>;
  /** Stops every rank still running. */
  stop(): Promise<void>;
}

/** How one local rank ended. */
interface RankExit {
  rank: number;
  code: number | null;
  signal: string | null;
  detail: string;
}

export class LaunchError extends Error {
  constructor(
    message: string,
    readonly rank: number,
    readonly exitCode: number | null,
    readonly signal: string | null,
  ) {
    super(message);
    this.name = 'LaunchError';
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * This process's environment for its ranks, without torchelastic's variables: when this launcher is itself a rank
 * of a torchrun job, its agent's store, restart count and error file are not those of the job it starts.
 */
function inheritedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] => e[1] !== undefined && !e[0].startsWith('TORCHELASTIC_'),
    ),
  );
}

export async function launchLocal(opts: LaunchOptions): Promise<LaunchedJob> {
  const nnodes = opts.nnodes ?? 1;
  const nodeRank = opts.nodeRank ?? 0;
  const mode = opts.mode ?? 'processes';
  if (!Number.isInteger(opts.nproc) || opts.nproc < 1)
    throw new RangeError(`nproc must be a positive integer, got ${opts.nproc}`);
  if (!Number.isInteger(nnodes) || nnodes < 1)
    throw new RangeError(`nnodes must be a positive integer, got ${nnodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) {
    throw new RangeError(
      `node_rank ${nodeRank} is out of range for nnodes ${nnodes} (expected 0..${nnodes - 1})`,
    );
  }
  if (mode === 'threads' && nnodes > 1) {
    throw new RangeError("mode 'threads' runs one node only; use mode 'processes' (TCP) for nnodes > 1");
  }
  const worldSize = opts.nproc * nnodes;
  const masterAddr = opts.masterAddr ?? '127.0.0.1';
  const masterPort = opts.masterPort ?? (nnodes === 1 ? await freePort() : 29500);
  const grace = opts.killGraceMs ?? 3000;
  const exitGrace = opts.exitGraceMs ?? 2000;
  const rings = mode === 'threads' ? createThreadRing(worldSize, { transport: opts.threadTransport }) : null;

  // Where each rank records why it failed, if it does.
  const errorDir = mkdtempSync(join(tmpdir(), 'mptjs-ranks-'));
  const errorFile = (rank: number) => join(errorDir, `rank-${rank}.json`);
  const handles: RankHandle[] = [];
  const exits: Promise<RankExit>[] = [];
  for (let local = 0; local < opts.nproc; local++) {
    const rank = nodeRank * opts.nproc + local;
    const env: Record<string, string> = {
      ...inheritedEnv(),
      ...opts.env,
      [ERROR_FILE_ENV]: errorFile(rank),
      RANK: String(rank),
      WORLD_SIZE: String(worldSize),
      LOCAL_RANK: String(local),
      LOCAL_WORLD_SIZE: String(opts.nproc),
      GROUP_RANK: String(nodeRank),
      MASTER_ADDR: masterAddr,
      MASTER_PORT: String(masterPort),
      ...(opts.distTimeoutS !== undefined ? { MPTJS_DIST_TIMEOUT: String(opts.distTimeoutS) } : {}),
    };
    let out = '';
    const collect = (chunk: Buffer) => {
      out += chunk.toString('utf8');
    };
    if (rings) {
      const ports = rings[rank]!;
      const worker = new Worker(opts.script, {
        argv: opts.args ?? [],
        env,
        workerData: { ...opts.workerData, mptjsRing: ports },
        transferList: ringTransferList(ports),
        stdout: opts.stdio === 'pipe',
        stderr: opts.stdio === 'pipe',
      });
      worker.stdout?.on('data', collect);
      worker.stderr?.on('data', collect);
      let detail = '';
      let terminated = false;
      worker.on('error', (err) => {
        detail = `: ${err.message}`;
      });
      exits.push(
        new Promise((resolve) =>
          worker.on('exit', (code) =>
            resolve({ rank, code, signal: terminated ? 'terminate()' : null, detail }),
          ),
        ),
      );
      handles.push({
        rank,
        localRank: local,
        worker,
        output: () => out,
        kill: () => {
          terminated = true;
          void worker.terminate();
        },
      });
    } else {
      const child = spawn(process.execPath, [opts.script, ...(opts.args ?? [])], {
        env,
        stdio: opts.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      });
      child.stdout?.on('data', collect);
      child.stderr?.on('data', collect);
      exits.push(
        new Promise((resolve) => {
          child.on('error', (err) => resolve({ rank, code: -1, signal: null, detail: `: ${err.message}` }));
          child.on('exit', (code, signal) => resolve({ rank, code, signal, detail: ` (pid ${child.pid})` }));
        }),
      );
      handles.push({
        rank,
        localRank: local,
        process: child,
        output: () => out,
        kill: (signal = 'SIGTERM') => {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
        },
      });
    }
  }

  const exited = new Set<number>();
  const stop = async (): Promise<void> => {
    for (const h of handles) if (!exited.has(h.rank)) h.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const h of handles) if (!exited.has(h.rank)) h.kill('SIGKILL');
    }, grace);
    await Promise.all(exits);
    clearTimeout(timer);
  };

  const done = new Promise<void>((resolve, reject) => {
    let remaining = exits.length;
    let stopping = false;
    // Failures seen before the launcher itself stopped the job, in the order they arrived.
    const failures: RankExit[] = [];
    for (const p of exits) {
      void p.then((exit) => {
        exited.add(exit.rank);
        remaining--;
        const failedNow = exit.code !== 0 || exit.signal;
        if (failedNow && !stopping) failures.push(exit);
        if (failedNow && failures.length === 1 && failures[0] === exit) {
          const timer = setTimeout(() => {
            stopping = true;
            void stop();
          }, exitGrace);
          void Promise.all(exits).then(() => {
            clearTimeout(timer);
            const records = failures.map((f) => readRankFailure(errorFile(f.rank)));
            rmSync(errorDir, { recursive: true, force: true });
            const { cause, record, blamedBy } = rootCause(failures, records);
            reject(
              new LaunchError(describeFailure(cause, record, blamedBy), cause.rank, cause.code, cause.signal),
            );
          });
          return;
        }
        if (remaining === 0 && failures.length === 0) {
          rmSync(errorDir, { recursive: true, force: true });
          resolve();
        }
      });
    }
  });
  // Callers that only stop() a job need not await `done`; its rejection is not an unhandled one.
  done.catch(() => undefined);
  return { ranks: handles, worldSize, masterPort, done, stop };
}

interface RootCause {
  cause: RankExit;
  /** The cause's own record, when it left one. */
  record: RankFailure | null;
  /** Ranks that failed because of `cause` when it left no exit of its own (a hung rank, stopped later). */
  blamedBy: RankExit[];
}

/**
 * Which failure caused the others. The peers of a dead rank fail too, sometimes before its exit is seen, and say
 * so in their records: the cause is a rank killed by a signal, else the first whose failure was its own (no
 * record: it crashed; or a record that blames no peer), else the rank the others blame (hung: it never exited).
 */
function rootCause(failures: RankExit[], records: (RankFailure | null)[]): RootCause {
  const own = (i: number) => records[i]?.blames === undefined;
  let i = failures.findIndex((f) => f.signal);
  if (i < 0) i = failures.findIndex((_, k) => own(k));
  if (i >= 0) return { cause: failures[i]!, record: records[i] ?? null, blamedBy: [] };
  // Every failed rank blames a peer: report the one most blamed, which exited cleanly or not at all.
  const votes = new Map<number, number>();
  for (const r of records) if (r?.blames !== undefined) votes.set(r.blames, (votes.get(r.blames) ?? 0) + 1);
  const peer = [...votes].sort((a, b) => b[1] - a[1] || a[0] - b[0])[0]![0];
  const blamedBy = failures.filter((_, k) => records[k]?.blames === peer).sort((a, b) => a.rank - b.rank);
  return {
    cause: { rank: peer, code: null, signal: null, detail: '' },
    record: records[failures.indexOf(blamedBy[0]!)] ?? null,
    blamedBy,
  };
}

function describeFailure(cause: RankExit, record: RankFailure | null, blamedBy: RankExit[]): string {
  if (blamedBy.length > 0) {
    const who = blamedBy.map((f) => f.rank).join(', ');
    return (
      `rank ${cause.rank} stopped taking part: rank(s) ${who} failed because of it ` +
      `(rank ${blamedBy[0]!.rank}: ${record?.message}); stopping the other ranks`
    );
  }
  const how = cause.signal ? `was killed by ${cause.signal}` : `exited with code ${cause.code}`;
  const why = record ? `: ${record.name}: ${record.message}` : '';
  return `rank ${cause.rank}${cause.detail} ${how}${why}; stopping the other ranks`;
}
