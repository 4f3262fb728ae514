// Draws three batches of the RedPajama mix from the bundled sample corpus, saves the state, and resumes from it.
//   node packages/data-mixer/examples/mix.mjs [path/to/tokenizer.json]   (run from the repository root)
import { DataMixer, loadDataRunConfig } from '@mptjs/data-mixer';

const { mixer: config, tokenizerPath } = loadDataRunConfig('data/sample/redpajama-sample.yaml');
const tokenizer = { path: process.argv[2] ?? tokenizerPath };

const mixer = await DataMixer.open({ config, tokenizer });
for await (const batch of mixer.batches({ batchSize: 4, limit: 3 })) {
  const from = [...batch.streams].map((s) => mixer.streamNames[s]);
  console.log(
    `batch at sample ${batch.firstSample}: [${batch.batchSize}, ${batch.seqLen}] from ${from.join(', ')}`,
  );
}
const state = JSON.stringify(mixer.state()); // store it with the checkpoint

const resumed = await DataMixer.open({ config, tokenizer, state: JSON.parse(state) });
for await (const batch of resumed.batches({ batchSize: 4, limit: 1 })) {
  console.log(`resumed at sample ${batch.firstSample}; first ids ${batch.tokens.slice(0, 8).join(' ')}`);
}
