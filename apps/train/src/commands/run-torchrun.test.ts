// `mptjs-train run` under torchrun: ranks get torchrun's variables (TORCHELASTIC_USE_AGENT_STORE=True, MASTER_PORT
// taken by the agent's c10d store; here a real torch.distributed.TCPStore from python3-torch stands in for the
// agent). Two ranks train the same losses as `--nproc 2`, across a torchrun restart that resumes from the latest
// checkpoint without --autoresume; a killed rank leaves the survivor's torchelastic error file naming it.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTorchStore, type TorchStore, torchStoreTestsRun, writeTinyRun } from '@mptjs/test-fixtures';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allAgree, CLI, cliBuilt, runCliToEnd, stepMetrics, stepsAgree } from '../testing/child-cli.js';

interface Rank {
  child: ChildProcess;
  errorFile: string;
  stdout: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** One rank as torchrun's agent starts it: its variables, nothing on the command line about the job. */
function torchrunRank(
  args: string[],
  o: { rank: number; port: number; runId: string; restart: number; errorDir: string },
): Rank {
  const errorFile = join(o.errorDir, `attempt${o.restart}-rank${o.rank}.json`);
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RANK: String(o.rank),
      LOCAL_RANK: String(o.rank),
      GROUP_RANK: '0',
      ROLE_RANK: String(o.rank),
      WORLD_SIZE: '2',
      LOCAL_WORLD_SIZE: '2',
      ROLE_WORLD_SIZE: '2',
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(o.port),
      TORCHELASTIC_USE_AGENT_STORE: 'True',
      TORCHELASTIC_RUN_ID: o.runId,
      TORCHELASTIC_RESTART_COUNT: String(o.restart),
      TORCHELASTIC_MAX_RESTARTS: '1',
      TORCHELASTIC_ERROR_FILE: errorFile,
    },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<Awaited<Rank['done']>>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, errorFile, stdout: () => stdout, done };
}

describe.runIf(cliBuilt && torchStoreTestsRun())(
  'mptjs-train run under torchrun (agent store on MASTER_PORT)',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-torchrun-'));
    const config = writeTinyRun(dir, { maxDuration: '4ba', saveInterval: '2ba' });
    const common = ['--backend', 'wasm', '--no-progress', '--set', 'scheduler.t_max=4ba'];
    let store: TorchStore;

    beforeAll(async () => {
      store = await startTorchStore();
    });
    afterAll(async () => {
      await store?.stop();
    });

    it('two ranks train the losses of --nproc 2, and a restarted attempt resumes from the checkpoint', async () => {
      const reference = join(dir, 'nproc');
      const ref = await runCliToEnd(['run', config, '--run-dir', reference, '--nproc', '2', ...common]);
      expect(ref.code, ref.stderr).toBe(0);

      const runDir = join(dir, 'torchrun');
      const attempt = async (restart: number, maxDuration: string) => {
        const ranks = [0, 1].map((rank) =>
          torchrunRank(
            ['run', config, '--run-dir', runDir, ...common, '--set', `max_duration=${maxDuration}`],
            {
              rank,
              port: store.port,
              runId: 'cli-job',
              restart,
              errorDir: dir,
            },
          ),
        );
        const results = await Promise.all(ranks.map((r) => r.done));
        for (const r of results) expect(r.code, r.stderr).toBe(0);
        return results;
      };
      const [first] = await attempt(0, '2ba');
      expect(first!.stdout).toContain('[mptjs] 2 ranks, FSDP FULL_SHARD');
      expect(first!.stdout).toMatch(/\[mptjs\] rank 0 \(local_rank 0\): backend=wasm \(requested\)/);
      const [again, other] = await attempt(1, '4ba');
      expect(again!.stdout).toContain(
        '[mptjs] torchrun restart 1 of 1: resuming from the latest checkpoint in',
      );
      expect(again!.stdout).toMatch(/resumed from .*ba00000002 at batch 2/);
      expect(other!.stdout).toMatch(/\[mptjs\] rank 1 \(local_rank 1\): backend=wasm \(requested\)/);

      const want = stepMetrics(reference);
      const got = stepMetrics(runDir);
      expect(got.map((m) => m.step)).toEqual([1, 2, 3, 4]);
      expect(want.map((m) => m.step)).toEqual([1, 2, 3, 4]);
      expect(stepsAgree(want, got, 1e-5)).toEqual(allAgree(want.length));
    });

    it('a killed rank: the survivor fails, and its torchelastic error file names the killed rank', async () => {
      const ranks = [0, 1].map((rank) =>
        torchrunRank(
          [
            'run',
            config,
            '--run-dir',
            join(dir, 'killed'),
            ...common,
            '--set',
            'max_duration=200ba',
            '--set',
            'save_interval=1000ba',
          ],
          { rank, port: store.port, runId: 'cli-kill', restart: 0, errorDir: dir },
        ),
      );
      const deadline = performance.now() + 120_000;
      while (!/\[batch=1\]/.test(ranks[0]!.stdout())) {
        if (performance.now() > deadline)
          throw new Error(`rank 0 never trained a step:\n${ranks[0]!.stdout()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      ranks[1]!.child.kill('SIGKILL');
      const [survivor, killed] = await Promise.all(ranks.map((r) => r.done));
      expect(killed!.signal).toBe('SIGKILL');
      expect(existsSync(ranks[1]!.errorFile)).toBe(false);
      expect(survivor!.code).toBe(1);
      expect(survivor!.stderr).toMatch(/^mptjs-train: .*rank 1/m);
      const file = JSON.parse(readFileSync(ranks[0]!.errorFile, 'utf8'));
      expect(Object.keys(file)).toEqual(['message']);
      expect(file.message.message).toMatch(
        /^rank 0: PeerFailureError: .*rank 1.*\(rank 0 failed because of rank 1\)$/,
      );
      expect(file.message.extraInfo.py_callstack.split('\n')[0]).toBe(file.message.message);
      expect(Number(file.message.extraInfo.timestamp)).toBeGreaterThan(Date.now() / 1000 - 600);
    });
  },
);
