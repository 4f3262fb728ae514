// The torchrun environment: parsing, launcher argument checks, the rendezvous store's operations, and a
// two-"node" job (two launchers, nnodes 2) meeting at one MASTER_PORT on 127.0.0.1.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isDistributedRank, readDistEnv } from './init.js';
import { freePort, launchLocal } from './launch.js';
import { TcpStoreClient, TcpStoreServer } from './transports/tcp-store.js';

const RANK_SCRIPT = fileURLToPath(new URL('../dist/testing/collective-rank.js', import.meta.url));

describe('readDistEnv', () => {
  it('parses the torchrun variables', () => {
    const env = readDistEnv({
      RANK: '3',
      WORLD_SIZE: '8',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      MASTER_ADDR: '10.0.0.1',
      MASTER_PORT: '29501',
      MPTJS_DIST_TIMEOUT: '2.5',
    });
    expect(env).toEqual({
      rank: 3,
      worldSize: 8,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: '10.0.0.1',
      masterPort: 29501,
      timeoutMs: 2500,
    });
  });

  it('tells a launched rank from a launcher', () => {
    expect(isDistributedRank({ RANK: '0' })).toBe(true);
    expect(isDistributedRank({})).toBe(false);
  });

  it('names the missing or malformed variable', () => {
    expect(() => readDistEnv({ WORLD_SIZE: '2' })).toThrow(/^RANK is not set/);
    expect(() => readDistEnv({ RANK: '0', WORLD_SIZE: 'two' })).toThrow('WORLD_SIZE="two" is not an integer');
    expect(() => readDistEnv({ RANK: '0', WORLD_SIZE: '1', MPTJS_DIST_TIMEOUT: '-1' })).toThrow(
      'MPTJS_DIST_TIMEOUT=-1 must be a positive number of seconds',
    );
  });
});

describe('launchLocal arguments', () => {
  it('rejects bad node counts and thread mode across nodes', async () => {
    await expect(launchLocal({ script: RANK_SCRIPT, nproc: 0 })).rejects.toThrow(
      'nproc must be a positive integer, got 0',
    );
    await expect(launchLocal({ script: RANK_SCRIPT, nproc: 1, nnodes: 2, nodeRank: 2 })).rejects.toThrow(
      'node_rank 2 is out of range for nnodes 2 (expected 0..1)',
    );
    await expect(launchLocal({ script: RANK_SCRIPT, nproc: 1, nnodes: 2, mode: 'threads' })).rejects.toThrow(
      "mode 'threads' runs one node only",
    );
  });

  it('two launchers with nnodes 2 form one 4-rank job (node_rank offsets RANK)', async () => {
    const masterPort = await freePort();
    const common = {
      script: RANK_SCRIPT,
      args: ['check'],
      nproc: 2,
      nnodes: 2,
      masterPort,
      stdio: 'pipe' as const,
    };
    const [node0, node1] = await Promise.all([
      launchLocal({ ...common, nodeRank: 0 }),
      launchLocal({ ...common, nodeRank: 1 }),
    ]);
    await Promise.all([node0.done, node1.done]);
    expect(node1.ranks.map((r) => r.rank)).toEqual([2, 3]);
    for (const h of [...node0.ranks, ...node1.ranks]) {
      const e = JSON.parse(h.output().trim()) as { rank: number; first: number; gathered: number[] };
      expect(e.rank).toBe(h.rank);
      expect(e.first).toBe(10);
      expect(e.gathered).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    }
  });

  it('a rank script that throws fails the job with the rank and exit code', async () => {
    const job = await launchLocal({
      script: RANK_SCRIPT,
      args: ['no-such-scenario'],
      nproc: 2,
      stdio: 'pipe',
    });
    await expect(job.done).rejects.toThrow(
      /^rank [01] \(pid \d+\) exited with code 3: Error: unknown scenario no-such-scenario; stopping the other ranks$/,
    );
  });
});

describe('TCP rendezvous store', () => {
  it('set/get/add/check, with get blocking until the key is set', async () => {
    const server = await TcpStoreServer.listen('127.0.0.1', 0, 2);
    const a = await TcpStoreClient.connect('127.0.0.1', server.port, 2000);
    const b = await TcpStoreClient.connect('127.0.0.1', server.port, 2000);
    try {
      await a.hello(0, 2);
      await expect(b.hello(0, 2)).rejects.toThrow('rank 0 joined twice (two processes with the same RANK?)');
      const pending = b.get('addr/1');
      await a.set('addr/1', '127.0.0.1:1234');
      expect(await pending).toBe('127.0.0.1:1234');
      expect(await a.add('count', 2)).toBe(2);
      expect(await b.add('count', 3)).toBe(5);
      expect(await a.check('count')).toBe(true);
      expect(await a.check('nope')).toBe(false);
      await expect(a.get('never', 100)).rejects.toThrow(/get never timed out after 0\.10s/);
    } finally {
      a.close();
      b.close();
      await server.close();
    }
  });

  it('an unreachable store is reported with its address', async () => {
    const port = await freePort();
    await expect(TcpStoreClient.connect('127.0.0.1', port, 300)).rejects.toThrow(
      `could not reach the rendezvous store at 127.0.0.1:${port} within 0.30s (ECONNREFUSED)`,
    );
  });
});
