// Ranks started the way torchrun starts them (its variables, TORCHELASTIC_USE_AGENT_STORE=True) meet through a real
// torch.distributed.TCPStore on MASTER_PORT, standing in for torchrun's agent store: that port is taken, so a rank
// that tried to host our own store there would fail. Attempts are kept apart by restart count, bad launches get
// precise errors, and a failing rank writes torchelastic's error file naming the rank at fault.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTorchStore, type TorchStore, torchStoreTestsRun } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDistEnv, readElasticEnv } from '../init.js';
import { launchLocal } from '../launch.js';
import { C10dStore } from './c10d-store.js';

const RANK_SCRIPT = fileURLToPath(new URL('../../dist/testing/collective-rank.js', import.meta.url));

interface RankRun {
  child: ChildProcess;
  errorFile: string;
  done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    events: Record<string, unknown>[];
    stderr: string;
  }>;
  /** Resolves at the first stdout event that has `key`. */
  event(key: string): Promise<Record<string, unknown>>;
}

/** Polls with `check`: torch's legacy server does not wake waiters on keys that compare_set creates. */
async function untilKey(port: number, key: string): Promise<void> {
  const probe = await C10dStore.connect({ host: '127.0.0.1', port, timeoutMs: 10_000 });
  try {
    const deadline = performance.now() + 15_000;
    while (!(await probe.check([key]))) {
      if (performance.now() > deadline) throw new Error(`${key} never appeared`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    probe.close();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'mptjs-agent-rdzv-'));

function startRank(
  scenario: string,
  env: { rank: number; worldSize: number; port: number; runId: string; restart?: number },
): RankRun {
  const errorFile = join(dir, `${env.runId}-${env.restart ?? 0}-rank${env.rank}-${Math.random()}.json`);
  const child = spawn(process.execPath, [RANK_SCRIPT, scenario], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RANK: String(env.rank),
      LOCAL_RANK: String(env.rank),
      WORLD_SIZE: String(env.worldSize),
      LOCAL_WORLD_SIZE: String(env.worldSize),
      GROUP_RANK: '0',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(env.port),
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RUN_ID: env.runId,
      TORCHELASTIC_RESTART_COUNT: String(env.restart ?? 0),
      TORCHELASTIC_MAX_RESTARTS: '1',
      TORCHELASTIC_ERROR_FILE: errorFile,
      MPTJS_DIST_TIMEOUT: '20',
    },
  });
  const events: Record<string, unknown>[] = [];
  const watchers: Array<{ key: string; resolve: (e: Record<string, unknown>) => void }> = [];
  let stderr = '';
  let partial = '';
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const e = JSON.parse(line) as Record<string, unknown>;
      events.push(e);
      for (const w of watchers.filter((w) => w.key in e)) w.resolve(e);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Awaited<RankRun['done']>>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, events, stderr })),
  );
  return {
    child,
    errorFile,
    done,
    event: (key) =>
      new Promise((resolve) => {
        const seen = events.find((e) => key in e);
        if (seen) resolve(seen);
        else watchers.push({ key, resolve });
      }),
  };
}

describe('torchelastic variables', () => {
  it('are parsed and checked', () => {
    const env = readDistEnv({
      RANK: '3',
      WORLD_SIZE: '4',
      LOCAL_RANK: '1',
      LOCAL_WORLD_SIZE: '2',
      GROUP_RANK: '1',
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RUN_ID: 'job7',
      TORCHELASTIC_RESTART_COUNT: '2',
      TORCHELASTIC_MAX_RESTARTS: '3',
      TORCHELASTIC_ERROR_FILE: '/tmp/err.json',
    });
    expect(env.elastic).toEqual({
      useAgentStore: true,
      runId: 'job7',
      restartCount: 2,
      maxRestarts: 3,
      groupRank: 1,
      errorFile: '/tmp/err.json',
    });
    expect(readElasticEnv({ RANK: '0' })).toBeUndefined();
    expect(readElasticEnv({ TORCHELASTIC_USE_AGENT_STORE: 'False' })?.useAgentStore).toBe(false);
    expect(() => readElasticEnv({ TORCHELASTIC_USE_AGENT_STORE: 'yes' })).toThrow(
      'TORCHELASTIC_USE_AGENT_STORE="yes" is not True or False',
    );
    expect(() => readElasticEnv({ TORCHELASTIC_RUN_ID: 'x', TORCHELASTIC_RESTART_COUNT: '-1' })).toThrow(
      'TORCHELASTIC_RESTART_COUNT=-1 is negative',
    );
    expect(() => readDistEnv({ RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2' })).toThrow(
      'LOCAL_RANK=2 is out of range for LOCAL_WORLD_SIZE=2 (expected 0..1)',
    );
  });
});

describe.runIf(existsSync(RANK_SCRIPT))('launchLocal inside a torchrun rank', () => {
  it("starts its ranks without the outer job's torchelastic variables (they host their own store)", async () => {
    const saved = { ...process.env };
    Object.assign(process.env, {
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RUN_ID: 'outer',
      TORCHELASTIC_RESTART_COUNT: '1',
    });
    try {
      const job = await launchLocal({ script: RANK_SCRIPT, args: ['check'], nproc: 2, stdio: 'pipe' });
      await job.done;
      expect(job.ranks.map((h) => JSON.parse(h.output().trim()).first)).toEqual([3, 3]);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    }
  });
});

describe.runIf(existsSync(RANK_SCRIPT) && torchStoreTestsRun())(
  'rendezvous through a torch agent store',
  () => {
    let server: TorchStore;

    beforeAll(async () => {
      server = await startTorchStore();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it('two ranks meet on the store without binding MASTER_PORT, once per restart', async () => {
      for (const restart of [0, 1]) {
        const ranks = [0, 1].map((rank) =>
          startRank('check', { rank, worldSize: 2, port: server.port, runId: 'job-a', restart }),
        );
        const results = await Promise.all(ranks.map((r) => r.done));
        for (const [rank, r] of results.entries()) {
          expect(r.code, r.stderr).toBe(0);
          expect(r.events[0]).toMatchObject({ rank, first: 3, gathered: [0, 0, 1, 1], b: [42, 42, 42] });
        }
        // The addresses went to the agent's store under the job and attempt, where torch's client finds them.
        expect((await server.get(`mptjs/job-a/${restart}/addr/1`)).toString()).toMatch(/^127\.0\.0\.1:\d+$/);
        expect((await server.get(`mptjs/job-a/${restart}/world_size`)).toString()).toBe('2');
      }
    });

    it('a rank with another WORLD_SIZE fails naming both sizes, in torchelastic’s error file', async () => {
      const first = startRank('check', { rank: 0, worldSize: 2, port: server.port, runId: 'job-b' });
      await untilKey(server.port, 'mptjs/job-b/0/world_size');
      const odd = startRank('check', { rank: 1, worldSize: 3, port: server.port, runId: 'job-b' });
      const r = await odd.done;
      first.child.kill('SIGKILL');
      await first.done;
      expect(r.code).toBe(3);
      const file = JSON.parse(readFileSync(odd.errorFile, 'utf8'));
      expect(file.message.message).toBe(
        'rank 1: RendezvousError: rank 1 has WORLD_SIZE=3 but the ranks before it in this attempt have WORLD_SIZE=2',
      );
      expect(file.message.extraInfo.py_callstack).toMatch(/^rank 1: RendezvousError: .*\n\s+at /);
      expect(Math.abs(Number(file.message.extraInfo.timestamp) - Date.now() / 1000)).toBeLessThan(60);
    });

    it('two processes with the same RANK: the second is told', async () => {
      const a = startRank('check', { rank: 0, worldSize: 2, port: server.port, runId: 'job-c' });
      await untilKey(server.port, 'mptjs/job-c/0/rank/0');
      const b = startRank('check', { rank: 0, worldSize: 2, port: server.port, runId: 'job-c' });
      const r = await b.done;
      a.child.kill('SIGKILL');
      await a.done;
      expect(r.code).toBe(3);
      expect(r.events[0]!['error']).toMatch(
        /^rank 0 joined twice \(two processes with the same RANK\?\): .* pid \d+ has it already$/,
      );
    });

    it('a killed rank: the survivor’s torchelastic error file names it as the cause', async () => {
      const ranks = [0, 1].map((rank) =>
        startRank('loop', { rank, worldSize: 2, port: server.port, runId: 'job-d' }),
      );
      await Promise.all(ranks.map((r) => r.event('ready')));
      ranks[1]!.child.kill('SIGKILL');
      const [survivor, killed] = await Promise.all(ranks.map((r) => r.done));
      expect(killed!.signal).toBe('SIGKILL');
      expect(existsSync(ranks[1]!.errorFile)).toBe(false);
      expect(survivor!.code).toBe(3);
      const file = JSON.parse(readFileSync(ranks[0]!.errorFile, 'utf8'));
      expect(Object.keys(file)).toEqual(['message']);
      expect(Object.keys(file.message.extraInfo).sort()).toEqual(['py_callstack', 'timestamp']);
      expect(file.message.message).toMatch(
        /^rank 0: PeerFailureError: allReduce #\d+ .*on rank 0 failed .*rank 1.* \(rank 0 failed because of rank 1\)$/,
      );
    });
  },
);
