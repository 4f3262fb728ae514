// Spawns this app's built CLI (dist/cli.js) as a real child process, for the CLI's tests.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../dist/cli.js');
export const cliBuilt = existsSync(CLI);
if (!cliBuilt) {
  const message = `${CLI} is not built (pnpm --filter @mptjs/train build)`;
  // Like the shared fixtures: a skip elsewhere, a failure under CI.
  if (process.env['CI'] === 'true') throw new Error(message);
  console.warn(`[skip] ${message}`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the CLI with `args`; `env` adds to (or overrides) this process's environment. */
export function startCli(
  args: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<CliResult>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

export function runCliToEnd(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return startCli(args, env).done;
}

export interface StepMetric {
  step: number;
  loss: number;
  grad_norm: number;
  lr: number;
}

/** Losses, grad norms and lrs of the training steps in a run's metrics.jsonl. */
export function stepMetrics(runDir: string): StepMetric[] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l))
    .filter((r) => 'loss' in r)
    .map((r) => ({ step: r.step, loss: r.loss, grad_norm: r.grad_norm, lr: r.lr }));
}

/**
 * For each of `want`'s steps, whether `got`'s loss and grad norm equal it within `rtol` (relative; absolute below
 * 1): `{ step, loss, norm }`, all true when two runs trained the same.
 */
export function stepsAgree(
  want: readonly StepMetric[],
  got: readonly StepMetric[],
  rtol: number,
): { step: number; loss: boolean; norm: boolean }[] {
  const close = (a: number | undefined, b: number) =>
    a !== undefined && Math.abs(a - b) <= rtol * Math.max(1, Math.abs(b));
  return want.map((w, i) => ({
    step: i + 1,
    loss: close(got[i]?.loss, w.loss),
    norm: close(got[i]?.grad_norm, w.grad_norm),
  }));
}

/** What `stepsAgree` gives for `steps` steps that agree. */
export function allAgree(steps: number): { step: number; loss: boolean; norm: boolean }[] {
  return Array.from({ length: steps }, (_, i) => ({ step: i + 1, loss: true, norm: true }));
}
