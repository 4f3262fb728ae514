// Mirrors packages/trainer/README.md's examples against the installed tarball: the unit-chain driver, then a
// two-batch training run from YAML on the bundled sample corpus, exported and reloaded with hf-loader.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selectBackend } from '@mptjs/alibi-attention';
import { loadCheckpoint } from '@mptjs/hf-loader';
import { MPTModel, parseMptConfig } from '@mptjs/mpt-model';
import {
  forwardBackwardChain,
  LocalParameters,
  lmContext,
  loadTrainConfig,
  mptChainUnits,
  train,
} from '@mptjs/trainer';
import * as tf from '@tensorflow/tfjs-core';

await selectBackend('wasm', { log: false });
const model = MPTModel.init(
  parseMptConfig({
    model_type: 'mpt',
    d_model: 64,
    n_heads: 4,
    n_layers: 2,
    max_seq_len: 32,
    vocab_size: 512,
    no_bias: true,
    attn_config: { alibi: true, qk_ln: true },
  }),
  0,
);
const ids = tf.tensor2d(
  [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
  ],
  undefined,
  'int32',
);
const host = new LocalParameters(model.params);
const loss = await forwardBackwardChain(mptChainUnits(model), ids, lmContext(model, ids), host);
const grads = host.takeGradients();
console.log('chain loss', loss, 'gradients', grads.size);
assert.ok(Number.isFinite(loss) && loss > 4 && loss < 9);
assert.ok(grads.has('transformer.wte.weight'));

const repo = process.env.MPTJS_REPO_DIR;
const work = mkdtempSync(join(tmpdir(), 'trainer-example-'));
const streams = ['common_crawl', 'c4', 'github', 'wikipedia', 'books', 'arxiv', 'stackexchange']
  .map((s) => `      ${s}: { local: ${join(repo, 'data/sample', s)} }`)
  .join('\n');
writeFileSync(
  join(work, 'tiny.yaml'),
  `
variables:
  seq: 64
max_seq_len: \${variables.seq}
seed: 17
model:
  name: mpt_causal_lm
  d_model: 32
  n_heads: 2
  n_layers: 2
  expansion_ratio: 2
  max_seq_len: \${variables.seq}
  vocab_size: 50432
  no_bias: true
  attn_config: { alibi: true, qk_ln: true }
tokenizer:
  name: ${join(process.env.MPTJS_SHARED_DIR, 'data/gpt-neox-20b-tokenizer.json')}
train_loader:
  name: text
  dataset:
    shuffle: true
    streams:
${streams}
optimizer: { name: decoupled_adamw, lr: 2.0e-4, betas: [0.9, 0.95], eps: 1.0e-8, weight_decay: 0 }
scheduler: { name: cosine_with_warmup, t_warmup: 1ba, alpha_f: 0.1 }
algorithms:
  gradient_clipping: { clipping_type: norm, clipping_threshold: 1.0 }
max_duration: 10ba
global_train_batch_size: 4
device_train_microbatch_size: 2
`,
);
const { config, resolved } = loadTrainConfig(join(work, 'tiny.yaml'), ['max_duration=2ba']);
const result = await train({ config, resolved, runDir: join(work, 'run'), backend: 'wasm', log: () => {} });
console.log('trained', result.steps, 'steps, final loss', result.finalLoss, 'export', result.exportDir);
assert.equal(result.steps, 2);
assert.ok(Number.isFinite(result.finalLoss));
const metrics = readFileSync(join(work, 'run', 'metrics.jsonl'), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l));
assert.equal(metrics.filter((m) => m.loss !== undefined).length, 2);
assert.ok(existsSync(join(result.exportDir, 'tokenizer.json')));
const exported = await loadCheckpoint(result.exportDir);
assert.equal(exported.config.dModel, 32);
console.log('ok trainer');
