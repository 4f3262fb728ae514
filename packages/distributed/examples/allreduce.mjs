// Run: node examples/allreduce.mjs            (launches 2 worker-thread ranks of this same file)
//      node examples/allreduce.mjs processes  (2 child processes over TCP on 127.0.0.1)
import { isMainThread } from 'node:worker_threads';
import { initFromEnv, launchLocal } from '@mptjs/distributed';

const isRank = process.env.RANK !== undefined;
if (!isRank && isMainThread) {
  const mode = process.argv[2] === 'processes' ? 'processes' : 'threads';
  const job = await launchLocal({
    script: new URL(import.meta.url).pathname,
    nproc: 2,
    mode,
    distTimeoutS: 30,
  });
  await job.done; // rejects with a LaunchError naming the first rank that failed
} else {
  const pg = await initFromEnv(); // torchrun variables (or the ring ports of a launchLocal worker thread)
  const grads = new Float32Array(1_000_000).fill(pg.rank + 1);
  await pg.allReduce(grads, 'avg'); // ring reduce-scatter + all-gather, in place
  const shard = await pg.reduceScatter(new Float32Array(8).fill(pg.rank), 'sum'); // 8 / worldSize values
  await pg.verifySame({ lr: 2e-4, strategy: 'FULL_SHARD' }, 'config');
  console.log(`rank ${pg.rank}/${pg.worldSize}: avg=${grads[0]} shard=[${shard}]`);
  await pg.destroy();
}
