// Mirrors packages/fsdp/README.md's collectives example against the installed tarball: two worker-thread
// ranks, then two child-process ranks over TCP.
import assert from 'node:assert/strict';
import { isMainThread } from 'node:worker_threads';
import { initFromEnv, launchLocal } from '@mptjs/fsdp';

const isRank = process.env.RANK !== undefined;
if (!isRank && isMainThread) {
  for (const mode of ['threads', 'processes']) {
    const job = await launchLocal({
      script: new URL(import.meta.url).pathname,
      nproc: 2,
      mode,
      distTimeoutS: 30,
    });
    await job.done;
    console.log(`${mode}: done`);
  }
  console.log('ok fsdp');
} else {
  const pg = await initFromEnv();
  const grads = new Float32Array(1_000_000).fill(pg.rank + 1);
  await pg.allReduce(grads, 'avg');
  const shard = await pg.reduceScatter(new Float32Array(8).fill(pg.rank), 'sum');
  await pg.verifySame({ lr: 2e-4, strategy: 'FULL_SHARD' }, 'config');
  console.log(`rank ${pg.rank}/${pg.worldSize}: avg=${grads[0]} shard=[${shard}]`);
  assert.equal(grads[0], 1.5);
  assert.equal(grads[999_999], 1.5);
  assert.deepEqual([...shard], [1, 1, 1, 1]);
  await pg.destroy();
}
