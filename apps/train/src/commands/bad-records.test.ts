// `on_bad_record` through the real CLI (child processes): `run` accepts the data mixer's key, skips every kind of
// bad JSON-lines record and counts them in metrics.jsonl; `data stats` does the same and reports the counts.
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyRun } from '@mptjs/test-fixtures';
import { describe, expect, it } from 'vitest';
import { cliBuilt, runCliToEnd } from '../testing/child-cli.js';

// Four bad records of different kinds among the web stream's 60 good ones (lines 61-65; 63 is blank).
const BAD_LINES = [
  '{"text": oops',
  '{"body": "no text field"}',
  '',
  '{"text": 42}',
  '["not", "an", "object"]',
];

describe.skipIf(!cliBuilt)('on_bad_record through mptjs-train (built CLI, child process)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mptjs-cli-bad-records-'));
  const config = writeTinyRun(dir);
  const webFile = join(dir, 'data/web/train/data.jsonl');
  appendFileSync(webFile, `${BAD_LINES.join('\n')}\n`);

  it('run accepts on_bad_record: skip, skips each bad record once and counts them in metrics.jsonl', async () => {
    const runDir = join(dir, 'skip');
    const r = await runCliToEnd([
      'run',
      config,
      '--run-dir',
      runDir,
      '--backend',
      'wasm',
      '--set',
      'max_duration=3ba',
      '--set',
      'eval_interval=100ba',
      '--set',
      'train_loader.dataset.on_bad_record=skip',
    ]);
    expect(r.stderr).not.toMatch(/mptjs-train:/);
    expect(r.code).toBe(0);
    for (const [line, reason] of [
      [61, 'invalid JSON'],
      [62, 'missing field "text"'],
      [64, 'non-string field "text"'],
      [65, 'expected a JSON object, got an array'],
    ] as const) {
      expect(r.stderr + r.stdout).toContain(`${webFile}:${line}: ${reason}`);
    }
    const steps = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((m) => 'loss' in m);
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3]);
    const last = steps.at(-1)!;
    expect(last['skipped_records']).toBe(4);
    expect(last['skipped_records/web']).toBe(4);
    expect(last['skipped_records/code']).toBeUndefined();
    expect(r.stdout).toMatch(/\[batch=3\] loss=.* skipped_records=4/);
  });

  it('run stops at the first bad record by default, naming file and line', async () => {
    const r = await runCliToEnd(['run', config, '--run-dir', join(dir, 'fail'), '--backend', 'wasm']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${webFile}:61: invalid JSON`);
  });

  it('data stats skips them too and reports the count per stream', async () => {
    const yaml = join(dir, 'stats.yaml');
    writeFileSync(
      yaml,
      readFileSync(config, 'utf8').replace(
        '    shuffle_seed: 11\n',
        '    shuffle_seed: 11\n    on_bad_record: skip\n',
      ),
    );
    const r = await runCliToEnd(['data', 'stats', yaml, '--samples', '20', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { streams: Record<string, { samples: number; skipped: number }> };
    expect(out.streams['web']!.skipped).toBe(4);
    expect(out.streams['code']!.skipped).toBe(0);
    expect(r.stderr).toContain(`${webFile}:62: missing field "text": skipped (on_bad_record: skip;`);
    const table = await runCliToEnd(['data', 'stats', yaml, '--samples', '20']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/fraction {2}target {2}skipped\nweb .* {6}4\n/);
  });
});
