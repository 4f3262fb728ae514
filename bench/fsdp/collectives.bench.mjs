// All-reduce bus bandwidth of @mptjs/distributed's ring over worker threads (shared memory, or MessagePorts) and over
// TCP loopback (child processes), for 2 and 4 ranks, against a single-process memcpy (Float32Array.set) of the same buffer
// measured in the same run. Bus bandwidth = bytes * 2 (W - 1) / W / time (the NCCL-tests convention).
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { report, timeit } from '../lib.mjs';
import { benchTransports, runRanks, transportLabel } from './transports.mjs';

const elements = Number(process.env.BENCH_ELEMENTS ?? 1 << 22); // 16 MiB of float32
const bytes = elements * 4;
const rankScript = fileURLToPath(new URL('./allreduce-rank.mjs', import.meta.url));

const src = new Float32Array(elements).fill(1);
const dst = new Float32Array(elements);
const copy = await timeit(() => dst.set(src), { repeats: 9, warmup: 2 });
const rows = [
  { name: 'memcpy (Float32Array.set, 1 process)', value: bytes / copy.median_s / 1e9, unit: 'GB/s' },
];

for (const transport of benchTransports()) {
  for (const nproc of [2, 4]) {
    const { median_s } = await runRanks(transport, rankScript, nproc, {
      BENCH_ELEMENTS: String(elements),
      BENCH_REPEATS: '5',
    });
    const busbw = (bytes * 2 * (nproc - 1)) / nproc / median_s / 1e9;
    rows.push({
      name: `allReduce ${nproc} ranks, ${transportLabel(transport)}`,
      value: busbw,
      unit: 'GB/s busbw',
      median_ms: median_s * 1e3,
    });
  }
}

report('fsdp-collectives', {
  rows,
  baseline: rows[0].name,
  notes: {
    buffer: `${elements} float32 (${(bytes / 2 ** 20).toFixed(0)} MiB)`,
    algorithm: 'ring reduce-scatter + all-gather, 1 MiB segments',
    load_average_1m: os.loadavg()[0].toFixed(1),
  },
});
for (const r of rows.slice(1)) console.log(`${r.name}: ${r.median_ms.toFixed(1)} ms per all-reduce`);
