#!/usr/bin/env node
// Runs every script under packages/*/examples/ (the command-line versions of the README examples) against the
// built packages, from the repository root, and prints `ok`/`FAIL` per script. Each must exit 0 and print
// what its expectations below say; a script without expectations here is a failure, so none goes unrun.
//   node tools/examples/run.mjs   (after `pnpm build`)
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const sharedDir = resolve(root, process.env.MPTJS_SHARED_DIR ?? '../shared');
const tokenizerJson = join(sharedDir, 'data/gpt-neox-20b-tokenizer.json');

/** Per script: its arguments and lines its output must contain. */
const EXPECT = {
  'tokenizer/examples/quickstart.mjs': { args: [tokenizerJson], lines: ['[ 12092, 1533 ]', 'Hello world'] },
  'data-mixer/examples/mix.mjs': { args: [], lines: ['batch at sample 0: [4, 128]', 'resumed at sample 12'] },
  'hf-loader/examples/load-and-export.mjs': { args: [], lines: ["format: 'pytorch_bin'", 'I64 [ 1, 3 ]'] },
  'distributed/examples/allreduce.mjs': { args: [], lines: ['rank 0/2: avg=1.5', 'rank 1/2: avg=1.5'] },
  'fsdp/examples/fsdp-shards.mjs': {
    args: [],
    lines: ['rank 1 gathered norm_1.weight[16]', 'consolidated 18 tensors'],
  },
};

let failed = 0;
const scripts = readdirSync(join(root, 'packages')).flatMap((pkg) => {
  const dir = join(root, 'packages', pkg, 'examples');
  return existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.mjs'))
        .map((f) => `${pkg}/examples/${f}`)
    : [];
});
for (const script of scripts.sort()) {
  const expect = EXPECT[script];
  if (!expect) {
    failed++;
    console.log(`  FAIL ${script}: no expectations in tools/examples/run.mjs`);
    continue;
  }
  const r = spawnSync(process.execPath, [join(root, 'packages', script), ...expect.args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 300_000,
  });
  const missing = expect.lines.filter((l) => !r.stdout.includes(l));
  if (r.status === 0 && missing.length === 0) console.log(`  ok   example ${script}`);
  else {
    failed++;
    const why =
      r.status !== 0 ? `exit ${r.status ?? r.signal}` : `output lacks ${JSON.stringify(missing[0])}`;
    console.log(
      `  FAIL ${script}: ${why}\n${(r.stdout + r.stderr).trim().split('\n').slice(-15).join('\n')}`,
    );
  }
}
console.log(`[examples] ${scripts.length - failed}/${scripts.length} passed`);
process.exit(failed ? 1 : 0);
