// One rank of the collective benches: joins the group from the environment, times BENCH_OP (`allReduce`,
// `allGather` or `reduceScatter`, default allReduce) on a full buffer of BENCH_ELEMENTS floats (median over
// BENCH_REPEATS after a warm-up), checks the result, and rank 0 prints the timing as JSON. For allGather the full
// buffer is the output (each rank contributes BENCH_ELEMENTS / W); for reduceScatter it is the input.
import { initFromEnv } from '../../packages/distributed/dist/index.js';

const n = Number(process.env.BENCH_ELEMENTS ?? 1 << 22);
const repeats = Number(process.env.BENCH_REPEATS ?? 5);
const op = process.env.BENCH_OP ?? 'allReduce';
const pg = await initFromEnv();
const w = pg.worldSize;
if (n % w !== 0) throw new Error(`BENCH_ELEMENTS ${n} is not a multiple of the world size ${w}`);

let run;
let check;
if (op === 'allReduce') {
  const buf = new Float32Array(n).fill(1);
  run = () => pg.allReduce(buf, 'sum');
  const expected = w ** (repeats + 1);
  check = () => buf[0] === expected && buf[n - 1] === expected;
} else if (op === 'allGather') {
  const input = new Float32Array(n / w).fill(pg.rank + 1);
  const output = new Float32Array(n);
  run = () => pg.allGather(input, output);
  check = () => output[0] === 1 && output[n - 1] === w;
} else if (op === 'reduceScatter') {
  const input = new Float32Array(n).fill(1);
  const output = new Float32Array(n / w);
  run = () => pg.reduceScatter(input, 'sum', output);
  check = () => output[0] === w && output[n / w - 1] === w && input[0] === 1;
} else {
  throw new Error(`unknown BENCH_OP ${op}`);
}

const times = [];
for (let i = 0; i < repeats + 1; i++) {
  await pg.barrier();
  const t0 = performance.now();
  await run();
  if (i > 0) times.push((performance.now() - t0) / 1000);
}
times.sort((a, b) => a - b);
if (!check()) throw new Error(`wrong ${op} result on rank ${pg.rank}`);
if (pg.rank === 0)
  console.log(JSON.stringify({ op, median_s: times[Math.floor(times.length / 2)], min_s: times[0] }));
await pg.destroy();
