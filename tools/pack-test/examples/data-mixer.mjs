// Mirrors packages/data-mixer/README.md's example against the installed tarball, on the repository's bundled
// sample corpus (data/sample) and the shared GPT-NeoX-20B tokenizer.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DataMixer, loadDataRunConfig } from '@mptjs/data-mixer';

process.chdir(process.env.MPTJS_REPO_DIR); // the sample config's paths are relative to the repository root
const { mixer: config } = loadDataRunConfig('data/sample/redpajama-sample.yaml');
const tokenizer = { path: join(process.env.MPTJS_SHARED_DIR, 'data/gpt-neox-20b-tokenizer.json') };

const mixer = await DataMixer.open({ config, tokenizer });
const seen = [];
for await (const batch of mixer.batches({ batchSize: 4, limit: 3 })) {
  const from = [...batch.streams].map((s) => mixer.streamNames[s]);
  console.log(
    `batch at sample ${batch.firstSample}: [${batch.batchSize}, ${batch.seqLen}] from ${from.join(', ')}`,
  );
  assert.equal(batch.tokens.length, batch.batchSize * batch.seqLen);
  seen.push(batch);
}
assert.equal(seen.length, 3);
assert.deepEqual(
  seen.map((b) => b.firstSample),
  [0, 4, 8],
);
const state = JSON.stringify(mixer.state());

// Resuming from the saved state gives what a straight run gives next.
const resumed = await DataMixer.open({ config, tokenizer, state: JSON.parse(state) });
let next;
for await (const batch of resumed.batches({ batchSize: 4, limit: 1 })) next = batch;
const straight = await DataMixer.open({ config, tokenizer });
let fourth;
for await (const batch of straight.batches({ batchSize: 4, limit: 4 })) fourth = batch;
console.log(`resumed at sample ${next.firstSample}; first ids ${next.tokens.slice(0, 8).join(' ')}`);
assert.equal(next.firstSample, 12);
assert.deepEqual([...next.tokens], [...fourth.tokens]);
console.log('ok data-mixer');
