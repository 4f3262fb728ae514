// One rank of the all-reduce bench: joins the group from the environment, times `allReduce` on a buffer of
// BENCH_ELEMENTS floats (median over BENCH_REPEATS after a warm-up), and rank 0 prints the result as JSON.
import { initFromEnv } from '../../packages/fsdp/dist/index.js';

const n = Number(process.env.BENCH_ELEMENTS ?? 1 << 22);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const pg = await initFromEnv();
const buf = new Float32Array(n).fill(1);
const times = [];
for (let i = 0; i < repeats + 1; i++) {
  await pg.barrier();
  const t0 = performance.now();
  await pg.allReduce(buf, 'sum');
  if (i > 0) times.push((performance.now() - t0) / 1000);
}
times.sort((a, b) => a - b);
const expected = pg.worldSize ** (repeats + 1);
if (buf[0] !== expected || buf[n - 1] !== expected)
  throw new Error(`wrong all-reduce result ${buf[0]}, expected ${expected}`);
if (pg.rank === 0)
  console.log(JSON.stringify({ median_s: times[Math.floor(times.length / 2)], min_s: times[0] }));
await pg.destroy();
