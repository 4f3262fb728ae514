// Real ranks: child processes over 127.0.0.1 TCP and worker threads over shared memory or MessagePorts, run
// through launchLocal.
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { RendezvousError } from './errors.js';
import { initProcessGroup } from './init.js';
import { LaunchError, type LaunchedJob, launchLocal } from './launch.js';

const RANK_SCRIPT = fileURLToPath(new URL('../dist/testing/collective-rank.js', import.meta.url));

interface Event {
  rank: number;
  ready?: boolean;
  error?: string;
  name?: string;
  peer?: number;
  [k: string]: unknown;
}

function events(job: LaunchedJob): Event[] {
  return job.ranks.flatMap((h) =>
    h
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Event),
  );
}

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const jobs: LaunchedJob[] = [];
afterEach(async () => {
  await Promise.all(jobs.splice(0).map((j) => j.stop()));
});

type Mode = 'processes' | 'threads' | 'threads/message-port';

async function launch(mode: Mode, nproc: number, scenario: string, env: Record<string, string> = {}) {
  const job = await launchLocal({
    script: RANK_SCRIPT,
    args: [scenario],
    nproc,
    mode: mode === 'processes' ? 'processes' : 'threads',
    threadTransport: mode === 'threads/message-port' ? 'message-port' : 'shared-memory',
    stdio: 'pipe',
    env,
    killGraceMs: 500,
  });
  jobs.push(job);
  return job;
}

for (const mode of ['processes', 'threads', 'threads/message-port'] as const) {
  describe(`${mode}: collectives across real ranks`, () => {
    it('4 ranks agree on allReduce, allGather, reduceScatter, broadcast', async () => {
      const job = await launch(mode, 4, 'check');
      await job.done;
      const got = events(job).sort((a, b) => a.rank - b.rank);
      expect(got.map((e) => e.rank)).toEqual([0, 1, 2, 3]);
      for (const e of got) {
        expect(e.first).toBe(10);
        expect(e.last).toBe(10);
        expect(e.gathered).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
        expect(e.shard).toEqual([1, 1, 1, 1]);
        expect(e.b).toEqual([42, 42, 42]);
      }
    });

    it('a rank killed mid-collective makes every other rank fail fast naming it; the launcher names it too', async () => {
      // 4 ranks: rank 3 is not a neighbour of rank 1 and learns of its death through the ring.
      const job = await launch(mode, 4, 'loop', { MPTJS_DIST_TIMEOUT: '20' });
      await until(() => events(job).filter((e) => e.ready).length === 4);
      await new Promise((r) => setTimeout(r, 100)); // let a few all-reduces run
      const t0 = Date.now();
      job.ranks[1]!.kill('SIGKILL');
      const err = await job.done.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LaunchError);
      expect((err as LaunchError).rank).toBe(1);
      expect((err as Error).message).toMatch(
        /^rank 1 .*was killed by (SIGKILL|terminate\(\)); stopping the other ranks$/,
      );
      expect(Date.now() - t0).toBeLessThan(5000); // far below the 20 s timeout
      expect(events(job).filter((e) => e.error).length).toBe(3);
      for (const e of events(job).filter((x) => x.error)) {
        expect(e.name).toBe('PeerFailureError');
        expect(e.peer).toBe(1);
        expect(e.error).toMatch(
          /allReduce #\d+ \(1048576 elements\) on rank [023] failed after \d+\.\d\ds: rank 1 closed its connection/,
        );
      }
    });

    it('a hung rank is named in the timeout errors of the others, and by the launcher', async () => {
      const job = await launch(mode, 3, 'hang', { TARGET_RANK: '2', MPTJS_DIST_TIMEOUT: '1' });
      await until(() => events(job).filter((e) => e.error).length === 2, 15_000);
      for (const e of events(job).filter((x) => x.error)) {
        expect(e.name).toBe('CollectiveTimeoutError');
        expect(e.peer).toBe(2);
        expect(e.error).toMatch(/rank 2 did not join allReduce #\d+ within 1\.00s/);
      }
      // Ranks 0 and 1 exit with errors; rank 2 never does (the launcher stops it), yet it is the one named.
      const err = await job.done.catch((e: unknown) => e);
      expect((err as LaunchError).rank).toBe(2);
      expect((err as Error).message).toMatch(
        /^rank 2 stopped taking part: rank\(s\) 0, 1 failed because of it \(rank 0: allReduce #\d+ .*rank 2 did not join allReduce #\d+ within 1\.00s.*\); stopping the other ranks$/,
      );
    });

    it('names the rank that failed first even when its peers exit before it', async () => {
      const job = await launch(mode, 3, 'fail-late', { TARGET_RANK: '1', MPTJS_DIST_TIMEOUT: '20' });
      const err = await job.done.catch((e: unknown) => e);
      const errs = events(job).filter((e) => e.error);
      // The peers' own errors were reported (and their ranks ended) before rank 1's.
      const peers = errs.filter((e) => e.rank !== 1);
      const own = errs.find((e) => e.rank === 1)!;
      expect(peers.map((e) => e.peer)).toEqual([1, 1]);
      expect(Math.max(...peers.map((e) => e.ms as number))).toBeLessThan(own.ms as number);
      expect((err as LaunchError).rank).toBe(1);
      expect((err as Error).message).toMatch(
        /^rank 1 .*exited with code 3: Error: rank 1 ran out of memory \(test\); stopping the other ranks$/,
      );
    });

    it('a rank that exits between collectives makes the next collective fail at once, naming it', async () => {
      const job = await launch(mode, 3, 'exit-early', { TARGET_RANK: '1', MPTJS_DIST_TIMEOUT: '20' });
      const err = await job.done.catch((e: unknown) => e);
      expect((err as LaunchError).rank).toBe(1);
      const errs = events(job).filter((e) => e.error);
      expect(errs.map((e) => e.rank).sort()).toEqual([0, 2]);
      for (const e of errs) {
        expect(e.name).toBe('PeerFailureError');
        expect(e.error).toMatch(
          /^allReduce #\d+ \(4 elements\) on rank [02] cannot run: the process group failed earlier: rank 1 closed its connection/,
        );
      }
    });

    it('mismatched buffer sizes fail on every rank with both sizes', async () => {
      const job = await launch(mode, 2, 'mismatch', { TARGET_RANK: '1' });
      await job.done.catch(() => undefined);
      const errs = events(job).filter((e) => e.error);
      expect(errs.length).toBe(2);
      for (const e of errs) {
        expect(e.name).toBe('CollectiveMismatchError');
        expect(e.error).toMatch(/rank \d passed (10|12) elements, rank \d passed (10|12) elements/);
      }
    });
  });
}

describe('TCP rendezvous errors', () => {
  it('rank out of range and bad world size are rejected before any connection', async () => {
    await expect(initProcessGroup({ backend: 'tcp', rank: 4, worldSize: 4 })).rejects.toThrow(
      'RANK 4 is out of range for WORLD_SIZE 4 (expected 0..3)',
    );
    await expect(initProcessGroup({ backend: 'tcp', rank: 0, worldSize: 0 })).rejects.toThrow(
      'WORLD_SIZE must be a positive integer, got 0',
    );
  });

  it('a MASTER_PORT in use is reported as such', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const err = await initProcessGroup({ backend: 'tcp', rank: 0, worldSize: 2, masterPort: port }).catch(
        (e) => e,
      );
      expect(err).toBeInstanceOf(RendezvousError);
      expect(err.message).toBe(
        `rank 0 could not host the rendezvous store on 127.0.0.1:${port}: address already in use (another job or store on this port? pick another MASTER_PORT)`,
      );
    } finally {
      blocker.close();
    }
  });

  it('ranks that disagree on WORLD_SIZE get an error naming both sizes', async () => {
    const { freePort } = await import('./launch.js');
    const masterPort = await freePort();
    const opts = { backend: 'tcp' as const, masterPort, timeoutMs: 1500 };
    const [r0, r1] = await Promise.allSettled([
      initProcessGroup({ ...opts, rank: 0, worldSize: 2 }),
      initProcessGroup({ ...opts, rank: 1, worldSize: 3 }),
    ]);
    expect(r1.status).toBe('rejected');
    expect((r1 as PromiseRejectedResult).reason.message).toContain(
      'rank 1 has WORLD_SIZE=3 but the store (rank 0) has WORLD_SIZE=2',
    );
    expect(r0.status).toBe('rejected'); // rank 0 gives up waiting for rank 1 instead of hanging
  });

  it('TCP ranks in one process: large buffers cross segment and chunk boundaries intact', async () => {
    const { freePort } = await import('./launch.js');
    const masterPort = await freePort();
    const w = 3;
    const groups = await Promise.all(
      Array.from({ length: w }, (_, rank) =>
        initProcessGroup({
          backend: 'tcp',
          rank,
          worldSize: w,
          masterPort,
          timeoutMs: 10_000,
          segmentElements: 1000,
        }),
      ),
    );
    try {
      const n = 50_001;
      const bufs = groups.map((g) => Float32Array.from({ length: n }, (_, i) => (i % 97) * (g.rank + 1)));
      await Promise.all(groups.map((g, r) => g.allReduce(bufs[r]!, 'avg')));
      for (const b of bufs) for (let i = 0; i < n; i += 997) expect(b[i]).toBeCloseTo(((i % 97) * 6) / 3, 4);
    } finally {
      await Promise.all(groups.map((g) => g.destroy()));
    }
  });
});
