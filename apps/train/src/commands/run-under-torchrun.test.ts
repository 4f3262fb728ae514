// `mptjs-train run` launched by the real torchrun (python3-torch's torch.distributed.run, `--no_python`): two ranks
// train the losses of `--nproc 2`; with `--max_restarts 1` a rank killed mid-run is survived (torchrun restarts the
// group, which resumes from the latest checkpoint); without restarts torchrun's failure summary carries mptjs's
// message naming the killed rank.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@mptjs/distributed';
import { PYTHON, TORCHRUN_SCRIPT, torchStoreTestsRun, writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { allAgree, CLI, cliBuilt, runCliToEnd, stepMetrics, stepsAgree } from '../testing/child-cli.js';

interface Launched {
  child: ChildProcess;
  output: () => string;
  done: Promise<{ code: number | null; output: string }>;
}

function torchrun(torchrunArgs: string[], cliArgs: string[]): Launched {
  const child = spawn(
    PYTHON,
    [TORCHRUN_SCRIPT, '--no_python', ...torchrunArgs, process.execPath, CLI, ...cliArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const done = new Promise<{ code: number | null; output: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, output })),
  );
  return { child, output: () => output, done };
}

/** The pid of the rank `rank` among the processes torchrun's agent (`parent`) started. */
function rankPid(parent: number | undefined, rank: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== parent) continue;
      const env = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (env.includes(`RANK=${rank}`)) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

async function until(what: string, cond: () => boolean, ms = 180_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.runIf(cliBuilt && process.platform === 'linux' && torchStoreTestsRun())(
  'mptjs-train run under the real torchrun',
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'mptjs-torchrun-real-'));
    const config = writeTinyRun(dir, { maxDuration: '6ba', saveInterval: '2ba' });
    const common = ['--backend', 'wasm', '--no-progress', '--set', 'scheduler.t_max=6ba'];

    it('a rank killed mid-run is survived with --max_restarts 1, and the losses are those of --nproc 2', async () => {
      const reference = join(dir, 'nproc');
      const ref = await runCliToEnd(['run', config, '--run-dir', reference, '--nproc', '2', ...common]);
      expect(ref.code, ref.stderr).toBe(0);

      const runDir = join(dir, 'restarted');
      const port = await freePort();
      const job = torchrun(
        [
          '--nproc_per_node',
          '2',
          '--master_port',
          String(port),
          '--max_restarts',
          '1',
          '--monitor_interval',
          '0.2',
        ],
        ['run', config, '--run-dir', runDir, ...common],
      );
      await until('the first checkpoint', () =>
        existsSync(join(runDir, 'checkpoints/ba00000002/state.json')),
      );
      const victim = rankPid(job.child.pid!, 1);
      expect(victim, job.output()).toBeDefined();
      process.kill(victim!, 'SIGKILL');
      const r = await job.done;
      expect(r.code, r.output).toBe(0);
      expect(r.output).toContain('[mptjs] torchrun restart 1 of 1: resuming from the latest checkpoint in');
      expect(r.output).toMatch(/resumed from .*ba0000000[24] at batch [24]/);

      const want = stepMetrics(reference);
      const got = stepMetrics(runDir);
      expect(got.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(stepsAgree(want, got, 1e-5)).toEqual(allAgree(want.length));
    });

    it("without restarts, torchrun's failure summary shows mptjs's error naming the killed rank", async () => {
      const port = await freePort();
      const job = torchrun(
        ['--nproc_per_node', '2', '--master_port', String(port), '--monitor_interval', '5'],
        [
          'run',
          config,
          '--run-dir',
          join(dir, 'failed'),
          ...common,
          '--set',
          'max_duration=500ba',
          '--set',
          'save_interval=1000ba',
        ],
      );
      await until('a training step', () => /\[batch=1\]/.test(job.output()));
      // torchrun stops every rank at the first failure its monitor sees (here within 5 s): time for rank 0 to fail on
      // its own first and leave its error file, as it does within milliseconds of its peer's death.
      process.kill(rankPid(job.child.pid, 1)!, 'SIGKILL');
      const r = await job.done;
      expect(r.code).not.toBe(0);
      // The summary lists both failures: rank 1's signal, and rank 0's error file.
      expect(r.output).toMatch(/rank\s*: 1 \(local_rank: 1\)[\s\S]*Signal 9 \(SIGKILL\)/);
      expect(r.output).toMatch(
        /traceback\s*: rank 0: PeerFailureError: .*rank 1.*\(rank 0 failed because of rank 1\)/,
      );
    });
  },
);
