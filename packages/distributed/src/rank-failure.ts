// Why a rank failed, written where its launcher can read it (torchelastic's error files, in our format). When a
// rank dies, its peers fail too, and their exits can reach the launcher before the dead rank's: exit order alone
// cannot tell the cause from the consequences. Each rank's record says whether it failed on its own or because of
// a peer (and which), so the launcher names the rank that caused the failure.
import { readFileSync, writeFileSync } from 'node:fs';
import { CollectiveTimeoutError, PeerFailureError } from './errors.js';

/** The environment variable that tells a rank where to write its failure record. */
export const ERROR_FILE_ENV = 'MPTJS_ERROR_FILE';
/** Where torchrun's agent looks for a failed rank's error (one file per rank, set by the agent). */
export const TORCHELASTIC_ERROR_FILE_ENV = 'TORCHELASTIC_ERROR_FILE';

/**
 * torchelastic's error file, as `torch.distributed.elastic.multiprocessing.errors.ErrorHandler.record_exception`
 * writes it. The agent shows `py_callstack` in its failure summary (next to the rank it launched) and takes the
 * failure with the smallest `timestamp` (seconds, as a string) as the root cause.
 */
export interface TorchelasticErrorFile {
  message: {
    message: string;
    extraInfo: { py_callstack: string; timestamp: string };
  };
}

export interface RankFailure {
  rank: number;
  /** The error's class name and message, as the rank reported it. */
  name: string;
  message: string;
  /** The rank this one failed because of (a peer that died, closed its connection or hung), if any. */
  blames?: number;
}

/** The peer an error holds responsible: a dead or hung rank (never a mismatch, which both sides see alike). */
function blamedPeer(err: unknown): number | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof PeerFailureError || e instanceof CollectiveTimeoutError) return e.peer;
  }
  return undefined;
}

/** The torchelastic error file for a failure: our message, naming this rank and the rank it blames. */
export function torchelasticErrorFile(
  failure: RankFailure,
  stack: string | undefined,
  nowMs = Date.now(),
): TorchelasticErrorFile {
  const cause =
    failure.blames !== undefined ? ` (rank ${failure.rank} failed because of rank ${failure.blames})` : '';
  const message = `rank ${failure.rank}: ${failure.name}: ${failure.message}${cause}`;
  // The stack's first line repeats name and message; the summary shows this text as the traceback.
  const frames = (stack ?? '').split('\n').filter((l) => /^\s+at /.test(l));
  return {
    message: {
      message,
      extraInfo: {
        py_callstack: [message, ...frames].join('\n'),
        timestamp: String(Math.floor(nowMs / 1000)),
      },
    },
  };
}

/**
 * Records why this rank is failing where a launcher asked for it: our record at `MPTJS_ERROR_FILE` (launchLocal),
 * torchelastic's at `TORCHELASTIC_ERROR_FILE` (torchrun); otherwise does nothing. Never throws: the rank is
 * failing already.
 */
export function recordRankFailure(err: unknown, rank = Number(process.env['RANK'] ?? '-1')): void {
  const path = process.env[ERROR_FILE_ENV];
  const elasticPath = process.env[TORCHELASTIC_ERROR_FILE_ENV];
  if (!path && !elasticPath) return;
  const e = err instanceof Error ? err : new Error(String(err));
  const blames = blamedPeer(err);
  const record: RankFailure = {
    rank,
    name: e.name,
    message: e.message,
    ...(blames !== undefined && blames !== rank ? { blames } : {}),
  };
  for (const [file, body] of [
    [path, record],
    [elasticPath, torchelasticErrorFile(record, e.stack)],
  ] as const) {
    if (!file) continue;
    try {
      writeFileSync(file, `${JSON.stringify(body)}\n`);
    } catch {
      // Nowhere to write it: the launcher falls back to the order of exits.
    }
  }
}

/** The record a rank left at `path`, or null when it left none (it crashed, or was killed). */
export function readRankFailure(path: string): RankFailure | null {
  try {
    const r = JSON.parse(readFileSync(path, 'utf8')) as Partial<RankFailure>;
    if (typeof r.rank !== 'number' || typeof r.message !== 'string') return null;
    return {
      rank: r.rank,
      name: String(r.name ?? 'Error'),
      message: r.message,
      ...(typeof r.blames === 'number' ? { blames: r.blames } : {}),
    };
  } catch {
    return null;
  }
}
