// CPU cost of FULL_SHARD's two collectives on a 64 MiB float32 buffer between 2 ranks, per thread transport,
// against the CPU cost of one memcpy of the same 64 MiB, all in this process. Both ranks run in this thread
// (createLocalGroups), so process.cpuUsage() counts the work of both and nothing else: the figure does not depend
// on how many cores the machine's other jobs leave free, unlike the wall-clock benches.
// Usage: node bench/fsdp/collective-cpu.bench.mjs   (needs `pnpm --filter @mptjs/distributed build`)
import os from 'node:os';
import { createLocalGroups } from '../../packages/distributed/dist/index.js';
import { report } from '../lib.mjs';

const n = Number(process.env.BENCH_ELEMENTS ?? 1 << 24);
const w = 2;
const repeats = 7;

/** Median CPU milliseconds of `fn` over `repeats` runs after one warm-up. */
async function cpuMs(fn) {
  const samples = [];
  for (let i = 0; i <= repeats; i++) {
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    if (i > 0) samples.push((c.user + c.system) / 1000);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const src = new Float32Array(n).fill(1);
const dst = new Float32Array(n);
const rows = [
  { name: 'memcpy 64 MiB (Float32Array.set)', value: await cpuMs(() => dst.set(src)), unit: 'CPU ms' },
];
for (const transport of ['shared-memory', 'message-port']) {
  const groups = createLocalGroups(w, { timeoutMs: 120_000, transport });
  const shards = groups.map((g) => new Float32Array(n / w).fill(g.rank + 1));
  const gathered = groups.map(() => new Float32Array(n));
  const full = groups.map(() => new Float32Array(n).fill(1));
  const reduced = groups.map(() => new Float32Array(n / w));
  const gather = () => Promise.all(groups.map((g, r) => g.allGather(shards[r], gathered[r])));
  const scatter = () => Promise.all(groups.map((g, r) => g.reduceScatter(full[r], 'sum', reduced[r])));
  rows.push({
    name: `allGather 2 ranks, ${transport} (both ranks)`,
    value: await cpuMs(gather),
    unit: 'CPU ms',
  });
  rows.push({
    name: `reduceScatter 2 ranks, ${transport} (both ranks)`,
    value: await cpuMs(scatter),
    unit: 'CPU ms',
  });
  if (gathered[1][n - 1] !== 2 || reduced[0][0] !== 2) throw new Error(`wrong results over ${transport}`);
  await Promise.all(groups.map((g) => g.destroy()));
}
report('fsdp-collective-cpu', {
  rows,
  baseline: rows[0].name,
  notes: {
    buffer: `${n} float32 (${((n * 4) / 2 ** 20).toFixed(0)} MiB): all-gather output, reduce-scatter input`,
    load_average_1m: os.loadavg()[0].toFixed(1),
  },
});
