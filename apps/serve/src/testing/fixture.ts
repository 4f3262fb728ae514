// Test support: the shared fixture paths, the built CLI as a child process (and as a server), and a relative-L2
// comparison.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedFile, TINY_MOSAIC_DIR, TOKENIZER_JSON } from '@mptjs/test-fixtures';

export const APP_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = join(APP_DIR, 'dist/cli.js');

export interface Fixture {
  dir: string;
  tokenizer: string;
  expected: { greedy: { prompt: number[]; continuation: number[] }; input_ids: number[][] };
}

/** The tiny MosaicGPT fixture and the GPT-NeoX tokenizer, or undefined (test skipped) when absent. */
export function fixture(): Fixture | undefined {
  const dir = sharedFile(TINY_MOSAIC_DIR);
  const tokenizer = sharedFile(TOKENIZER_JSON);
  if (!dir || !tokenizer) return undefined;
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Fixture['expected'];
  return { dir, tokenizer, expected };
}

export function requireBuiltCli(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI to completion (killed after `timeoutMs`), with extra environment variables. */
export function runCliProcess(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 90_000,
): Promise<CliResult> {
  requireBuiltCli();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** A `mptjs-serve serve` child process and its URL. */
export interface ServedCli {
  child: ChildProcessWithoutNullStreams;
  base: string;
  stderr: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `mptjs-serve serve` with `args` on a free port and waits (at most `startMs`) for its "serving ... on URL"
 * line. The caller kills the child.
 */
export function serveCli(args: string[], startMs = 60_000): Promise<ServedCli> {
  requireBuiltCli();
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', '0'], { env: { ...process.env } });
  let stderr = '';
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), startMs);
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = / on (http:\/\/[\d.]+:\d+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1]!, stderr: () => stderr, exited });
      }
    });
    child.on('exit', () => reject(new Error(`server exited:\n${stderr}`)));
  });
}
