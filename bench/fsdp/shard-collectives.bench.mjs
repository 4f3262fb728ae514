// The two collectives FULL_SHARD runs on every step, all-gather (parameters) and reduce-scatter (gradients), on a
// 64 MiB float32 buffer between 2 ranks, over worker threads (shared memory, or MessagePorts) and TCP loopback
// (child processes),
// against a single-process memcpy (Float32Array.set) of the same 64 MiB measured in the same run.
// The buffer is the all-gather's output and the reduce-scatter's input (NCCL-tests' "size"); algorithm bandwidth
// = bytes / time, bus bandwidth = algbw x (W - 1) / W (what each rank sends and receives over its links).
// Usage: node bench/fsdp/shard-collectives.bench.mjs   (needs `pnpm --filter @mptjs/distributed build`)
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { report, timeit } from '../lib.mjs';
import { benchTransports, runRanks, transportLabel } from './transports.mjs';

const elements = Number(process.env.BENCH_ELEMENTS ?? 1 << 24); // 64 MiB of float32
const bytes = elements * 4;
const nproc = Number(process.env.BENCH_NPROC ?? 2);
const rankScript = fileURLToPath(new URL('./allreduce-rank.mjs', import.meta.url));

const src = new Float32Array(elements).fill(1);
const dst = new Float32Array(elements);
const copy = await timeit(() => dst.set(src), { repeats: 9, warmup: 2 });
const rows = [
  {
    name: 'memcpy 64 MiB (Float32Array.set, 1 process)',
    value: bytes / copy.median_s / 1e9,
    unit: 'GB/s',
    median_ms: copy.median_s * 1e3,
  },
];

for (const transport of benchTransports()) {
  for (const op of ['allGather', 'reduceScatter']) {
    const { median_s } = await runRanks(transport, rankScript, nproc, {
      BENCH_ELEMENTS: String(elements),
      BENCH_REPEATS: '5',
      BENCH_OP: op,
    });
    const algbw = bytes / median_s / 1e9;
    rows.push({
      name: `${op} ${nproc} ranks, ${transportLabel(transport)}`,
      value: algbw,
      unit: 'GB/s algbw',
      busbw: (algbw * (nproc - 1)) / nproc,
      median_ms: median_s * 1e3,
    });
  }
}

report('fsdp-shard-collectives', {
  rows,
  baseline: rows[0].name,
  notes: {
    buffer: `${elements} float32 (${(bytes / 2 ** 20).toFixed(0)} MiB): all-gather output, reduce-scatter input`,
    load_average_1m: os.loadavg()[0].toFixed(1),
  },
});
for (const r of rows)
  console.log(
    `${r.name}: ${r.median_ms.toFixed(1)} ms${r.busbw === undefined ? '' : `, busbw ${r.busbw.toFixed(3)} GB/s`}`,
  );
