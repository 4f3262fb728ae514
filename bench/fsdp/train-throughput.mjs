// Training throughput of local FSDP ranks against one rank: runs bench/fsdp/train-bench.yaml as 1 rank and as
// 2 ranks (worker threads over shared memory, and/or child processes over TCP) back to back, PAIRS times
// (alternating which goes first), and prints for each run the 1-minute load average at its start, the global
// tokens/s over steps 2..N (tokens after step 1 / time from the end of step 1) from RUN_DIR/metrics.jsonl, the
// job's CPU time and CPU share (/usr/bin/time: all ranks, start-up and export included), and each pair's ratio
// to its own 1-rank run. The machine may be shared: only ratios within a pair taken at low load mean much.
// Usage: node bench/fsdp/train-throughput.mjs [--pairs 3] [--variants thread,process] [--steps 6] [--tokenizer PATH]
// (needs `pnpm --filter @mptjs/train build` and a tokenizer, see docs/benchmarks.md)
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { report } from '../lib.mjs';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '3' },
    variants: { type: 'string', default: 'thread' },
    steps: { type: 'string', default: '6' },
    tokenizer: { type: 'string', default: '/tmp/fsdp-bench/tokenizer.json' },
    out: { type: 'string', default: '/tmp/fsdp-bench' },
  },
});
const cli = new URL('../../apps/train/dist/cli.js', import.meta.url).pathname;
const config = new URL('./train-bench.yaml', import.meta.url).pathname;

function run(label, extra) {
  const dir = `${values.out}/${label}`;
  rmSync(dir, { recursive: true, force: true });
  const load = os.loadavg()[0];
  const started = new Date().toISOString().slice(11, 19);
  const args = ['run', config, '--run-dir', dir, '--backend', 'wasm', '--no-progress'];
  args.push(
    '--set',
    `max_duration=${values.steps}ba`,
    '--set',
    `tokenizer.name=${values.tokenizer}`,
    ...extra,
  );
  const res = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S', process.execPath, cli, ...args], {
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`${label} failed (${res.status}):\n${res.stderr.slice(-2000)}`);
  const [wall, user, sys] = res.stderr
    .match(/TIME (\S+) (\S+) (\S+)/)
    .slice(1)
    .map(Number);
  const steps = readFileSync(`${dir}/metrics.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const first = steps[0];
  const last = steps.at(-1);
  return {
    label,
    started,
    load_1m: Number(load.toFixed(2)),
    tokens_per_s: (last.tokens - first.tokens) / (last.elapsed_s - first.elapsed_s),
    cpu_s: user + sys,
    cpu_share: (user + sys) / wall,
    losses: steps.map((s) => s.loss),
  };
}

const rows = [];
for (let p = 0; p < Number(values.pairs); p++) {
  for (const v of values.variants.split(',')) {
    const one = () => run(`p${p}-1rank`, []);
    const two = () => run(`p${p}-2${v}`, ['--nproc', '2', '--local-ranks', v]);
    let a;
    let b;
    if (p % 2 === 0) {
      a = one();
      b = two();
    } else {
      b = two();
      a = one();
    }
    for (const r of [a, b]) {
      console.log(
        `${r.label} ${r.started} load ${r.load_1m} ${r.tokens_per_s.toFixed(1)} tok/s, ` +
          `CPU ${r.cpu_s.toFixed(1)} s (${(100 * r.cpu_share).toFixed(0)}%)`,
      );
    }
    const ratio = b.tokens_per_s / a.tokens_per_s;
    console.log(`pair ${p} (${v}): ${ratio.toFixed(3)}x`);
    rows.push({ name: `pair ${p}: 2 ranks (${v}) vs 1 rank`, value: ratio, unit: 'x', one: a, two: b });
  }
}
report('fsdp-train-throughput', {
  rows,
  notes: {
    config: 'bench/fsdp/train-bench.yaml',
    steps: values.steps,
    load_1m_end: os.loadavg()[0].toFixed(2),
  },
});
